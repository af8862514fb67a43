"""``spvis infer``: run a trained model on a video, a frame folder or every video of a dataset json.

Writes ``OUT/results.json`` (benchmark format, one entry per track and class; scorable with ``spvis eval``
when the input is a dataset json) and ``OUT/<video>.mp4`` overlays with coloured, id-labelled masks.
Online mode streams frames through segmenter + tracker with flat memory; offline mode adds the refiner.
``--task vps|vss`` writes the VIPSeg / VSPW submission layouts instead (``spvis.cli.infer_segmentation``).

Nothing is lost or half-written: each finished video's entries go to ``OUT/results.jsonl`` at once (an error
or a kill keeps the videos before it; ``--resume`` continues), results.json appears only when every video is
done, SIGTERM cleans up like Ctrl-C, and a --out holding another run's results needs --resume or --exist-ok.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spvis.cli.device_args import add_device_arguments, apply_threads
from spvis.cli.model_args import load_model_from_args
from spvis.engine.inference import VideoJob, iter_jobs, load_model, run_video  # noqa: F401 (tests patch these)
from spvis.engine.infer_settings import FOREIGN_RESULTS, SETTINGS_NAME
from spvis.engine.results_log import RESULTS_LOG_NAME, ResultsLog

RESULTS_NAME = "results.json"
MASKS_DIR = "masks"  # --save-masks: OUT/masks/<video>/<frame>.png


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "infer", help="segment and track instances in a video, frame folder or dataset json",
        description="Run a model on VIDEO.mp4, a FRAME_DIR or a DATASET_JSON (with --image-root). Writes "
                    "OUT/results.json and one OUT/<video>.mp4 overlay per video.")
    parser.add_argument("--task", choices=("vis", "vps", "vss"), default="vis",
                        help="vis: instances, results.json (default); vps: video panoptic, a VIPSeg json --input -> "
                             "OUT/pred.json + OUT/pan_pred/<video>/<frame>.png; vss: video semantic, a VSPW split file "
                             "--input (VSPW_480p/val.txt) -> OUT/<video>/<frame>.png label maps. Both are what "
                             "`spvis eval --task vps|vss` scores")
    parser.add_argument("--input", required=True, help="video file, folder of frames, YTVIS-format json, or a live "
                                                       "source: rtsp://..., http(s)://....mp4, webcam:0; --task vps: "
                                                       "a VIPSeg json; --task vss: a VSPW split file")
    parser.add_argument("--image-root", help="frame root of a dataset json (YouTube-VIS layout)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--weights", help="model weights (.safetensors written by spvis, or a model folder; default: "
                                         "the built-in demo model, which knows only `spvis synth` shapes)")
    which.add_argument("--model", help="a zoo model by name (`spvis models`): official weights are downloaded, "
                                       "verified and converted on first use, then cached under $SPVIS_HOME")
    parser.add_argument("--config", help="config YAML (default: the one saved beside the weights)")
    parser.add_argument("--backend", choices=("torch", "onnx", "torchscript"), default="torch",
                        help="torch: the eager model (default); onnx / torchscript: the graphs of an `spvis export` "
                             "folder given as --weights, run on the CPU inside the same online pipeline (onnx needs "
                             "`pip install 'spvis[export]'`)")
    parser.add_argument("--mode", choices=("online", "offline"), default="online",
                        help="online: frame by frame, flat memory; offline: adds the temporal refiner")
    parser.add_argument("--tracker", choices=("learned", "minvis", "pgt"),
                        help="online association: learned (the trained tracker, default TEST.TRACKER), minvis "
                             "(segmenter + Hungarian matching of query embeddings between frames; works with "
                             "segmenter-only weights) or pgt (the segmenter's confident queries with a track memory, "
                             "motion-propagated mask IoU and re-identification; options MODEL.TRACKER.PGT.*)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--score-thr", type=float, default=0.0,
                        help="drop result entries below this score; overlays show tracks scoring at least "
                             "max(this, 0.5) on a frame")
    parser.add_argument("--max-frames", type=int, help="read at most this many frames per video")
    parser.add_argument("--max-memory-gb", type=float,
                        help="offline: memory budget for cached mask features (default TEST.MAX_MEMORY_GB); "
                             "0 recomputes the segmenter per window instead of caching")
    parser.add_argument("--window-size", type=int, help="offline: frames decoded per window (default TEST.WINDOW_SIZE)")
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay videos")
    parser.add_argument("--save-masks", action="store_true",
                        help="also write OUT/masks/<video>/<frame>.png: one 16-bit PNG per frame whose pixels are "
                             "1 + the track ids of the overlay's instances (0 = background)")
    parser.add_argument("--allow-truncated", action="store_true",
                        help="a video that breaks off (a cut mp4, a missing, empty, cut, corrupt or mis-sized frame) "
                             "keeps the frames before the break, with a warning, instead of being an error")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out: skip the videos already in OUT/results.jsonl (refused when "
                            "a result-changing setting differs from OUT/results.settings.json)")
    again.add_argument("--exist-ok", action="store_true",
                       help="--out may hold another run's results: remove this command's own outputs there "
                            "(results.json, results.jsonl, results.settings.json, the overlays it writes) and start "
                            "over; other files stay")
    add_device_arguments(parser)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=run, interrupt_hint="rerun the same command with --resume to continue")


def planned_outputs(args: argparse.Namespace, out_dir: Path, videos: list[tuple[int, str]]) -> list[Path]:
    """Every file this run writes: results.json, results.jsonl, results.settings.json and one overlay per video
    (unless --no-overlay)."""
    outputs = [out_dir / RESULTS_NAME, out_dir / RESULTS_LOG_NAME, out_dir / SETTINGS_NAME]
    if not args.no_overlay:
        outputs += [out_dir / f"{name}.mp4" for _, name in videos]
    if getattr(args, "save_masks", False):  # a video's id maps already there mark --out as used, like its overlay
        outputs += [png for _, name in videos for png in sorted((out_dir / MASKS_DIR / name).glob("*.png"))]
    return outputs


def check_arguments(args: argparse.Namespace) -> None:
    """One-line errors for flag values that cannot work, before anything is read or written."""
    from spvis.errors import SpvisError

    if args.max_frames is not None and args.max_frames < 1:
        raise SpvisError(f"--max-frames must be at least 1, got {args.max_frames}")
    from spvis.data.live import is_live

    if not is_live(args.input) and not Path(args.input).exists():
        raise SpvisError(f"{args.input}: no such file or folder (--input)")
    if not 0.0 <= args.score_thr <= 1.0:  # also false for nan
        raise SpvisError(f"--score-thr must be a number in [0, 1], got {args.score_thr}")
    for flag, value in (("--max-memory-gb", args.max_memory_gb), ("--window-size", args.window_size)):
        if value is not None and args.mode != "offline":
            raise SpvisError(f"{flag} applies to --mode offline only")
        if value is not None and not value >= (0 if flag == "--max-memory-gb" else 1):
            raise SpvisError(f"{flag} must be {'>= 0' if flag == '--max-memory-gb' else '>= 1'}, got {value}")


def refuse_used_output(args: argparse.Namespace, out_dir: Path, outputs: list[Path]) -> list[Path]:
    """This run's outputs already in --out; an error unless --resume or --exist-ok says what to do with them."""
    from spvis.errors import SpvisError

    present = [p for p in outputs if p.is_file()]
    foreign = [out_dir / name for name in FOREIGN_RESULTS if (out_dir / name).is_file()]
    if (present or foreign) and not (args.resume or args.exist_ok):
        names = ", ".join(p.name for p in (present + foreign)[:4]) + (", ..." if len(present + foreign) > 4 else "")
        raise SpvisError(f"--out {out_dir} holds the outputs of another run ({names}); pass --resume to continue "
                         f"it or --exist-ok to replace its results")
    return present


def read_finished(args: argparse.Namespace, log: ResultsLog, videos: list[tuple[int, str]]) -> dict[int, list[dict]]:
    """With --resume, the entries of the videos results.jsonl already holds (all of them from this --input)."""
    from spvis.errors import SpvisError

    if not args.resume:
        return {}
    done = log.read()
    unknown = sorted(set(done) - {video_id for video_id, _ in videos})
    if unknown:
        raise SpvisError(f"{log.path}: holds video {unknown[0]}, which --input {args.input} does not have; it is "
                         f"another run's log: pass --exist-ok instead of --resume to start over")
    if log.dropped_partial_line:
        print(f"spvis infer: {log.path}: dropped a half-written last line (the run was killed while writing it)",
              file=sys.stderr)
    if done:
        print(f"spvis infer: resuming: {len(done)} of {len(videos)} videos already in {log.path}", file=sys.stderr)
    return done


def run_settings(args: argparse.Namespace, cfg: Any, weights: str | None) -> dict[str, Any]:
    """The result-changing settings of this run (spvis.engine.infer_settings says which and why); ``weights``:
    the file the model was loaded from (--weights, --model's cached file, or None for the built-in model; with
    --backend onnx / torchscript the export folder, identified by its manifest, which holds every graph's sha256)."""
    from spvis.checkpoints.io import weights_file
    from spvis.engine.distributed import resolve_device
    from spvis.engine.inference import BUILTIN_WEIGHTS
    from spvis.engine.infer_settings import result_settings
    from spvis.export.manifest import manifest_path

    graphs = getattr(args, "backend", "torch") != "torch"
    identity = manifest_path(weights) if graphs else weights_file(weights or BUILTIN_WEIGHTS)
    return result_settings(input_path=args.input, image_root=args.image_root, weights_file=identity, mode=args.mode,
                           score_thr=args.score_thr, max_frames=args.max_frames,
                           device_type=resolve_device(str(cfg.MODEL.DEVICE)).type, cfg=cfg)


def remove_files(paths: list[Path]) -> None:
    """Delete ``paths`` (--exist-ok: this command's own outputs of the previous run)."""
    for path in paths:
        path.unlink(missing_ok=True)


def run_one_video(args: argparse.Namespace, model: Any, cfg: Any, job: VideoJob, out_dir: Path,
                  is_dataset: bool) -> list[dict]:
    """Run one video; its json-ready entries. A dataset run's error names the video it happened in."""
    from spvis.errors import SpvisError
    from spvis.evaluation.results_io import json_ready_results

    try:
        result = run_video(model, cfg, job, mode=args.mode, out_dir=None if args.no_overlay else out_dir,
                           score_thr=args.score_thr, max_frames=args.max_frames,
                           max_memory_gb=args.max_memory_gb, window_size=args.window_size,
                           mask_dir=out_dir / MASKS_DIR if args.save_masks else None,
                           allow_truncated=args.allow_truncated)
    except SpvisError as exc:
        if not is_dataset:
            raise
        raise SpvisError(f"video {job.video_id}: {exc}") from None
    if result.truncated:
        print(f"spvis infer: warning: {job.name}: {result.error}; kept the {result.num_frames} frames read",
              file=sys.stderr)
    return json_ready_results(result.entries)


def run_all_videos(args: argparse.Namespace, model: Any, cfg: Any, out_dir: Path, log: ResultsLog,
                   done: dict[int, list[dict]], settings: dict[str, Any]) -> list[int]:
    """Run every video not in ``done``, logging each as it finishes; returns the video ids in input order. The
    settings record is written with the first finished video, so a run that finishes none leaves no file."""
    from spvis.engine.infer_settings import record_settings
    from spvis.errors import SpvisError

    from spvis.engine.domain_check import domain_warning

    is_dataset = Path(args.input).suffix.lower() == ".json"
    order: list[int] = []
    try:
        for job in iter_jobs(args.input, args.image_root, cfg, args.max_frames, args.allow_truncated):
            if not order:  # once the input opened: an input that fails to open is one error line, nothing else
                warning = domain_warning(cfg, args.input)
                if warning:
                    print(f"spvis infer: warning: {warning}", file=sys.stderr)
            order.append(job.video_id)
            if job.video_id in done:
                continue
            entries = run_one_video(args, model, cfg, job, out_dir, is_dataset)
            if not (out_dir / SETTINGS_NAME).is_file():
                record_settings(out_dir / SETTINGS_NAME, settings)
            log.append(job.video_id, entries)
            done[job.video_id] = entries
    except SpvisError as exc:
        finished = len([v for v in order if v in done])
        if not is_dataset or not finished:
            raise
        raise SpvisError(f"{exc} (the {finished} finished videos are kept in {log.path}; rerun with --resume "
                         f"to continue)") from None
    return order


def run(args: argparse.Namespace) -> int:
    from spvis.utils.signals import sigterm_raises

    from spvis.data.live import is_live, stop_live_on_sigint

    with sigterm_raises():  # SIGTERM cleans up (temp files, partial overlay) as Ctrl-C does
        with stop_live_on_sigint(is_live(args.input)):  # first Ctrl-C ends a live stream; its results are written
            return infer(args)


def infer(args: argparse.Namespace) -> int:
    """``spvis infer``: check everything, run every video, then write results.json from results.jsonl."""
    from spvis.engine.infer_settings import check_resume_settings
    from spvis.engine.inference import planned_videos
    from spvis.evaluation.results_io import write_results
    from spvis.utils.atomic_io import check_output_dir, refuse_overwriting_inputs, remove_stale_temp_files

    if getattr(args, "task", "vis") != "vis":
        from spvis.cli.infer_segmentation import infer_segmentation

        return infer_segmentation(args)
    check_arguments(args)
    apply_threads(args)
    out_dir = check_output_dir(args.out)
    videos = planned_videos(args.input, args.image_root)
    outputs = planned_outputs(args, out_dir, videos)
    refuse_overwriting_inputs(outputs, [("--input", args.input), ("--weights", args.weights),
                                        ("--config", args.config)])
    previous = refuse_used_output(args, out_dir, outputs)
    log = ResultsLog(out_dir / RESULTS_LOG_NAME)
    done = read_finished(args, log, videos)
    model, cfg, weights = load_model_from_args(args, load_model)
    settings = run_settings(args, cfg, weights)
    if args.resume:
        check_resume_settings(out_dir / SETTINGS_NAME, settings, log_has_videos=bool(done))
    if args.exist_ok:
        remove_files(previous)
    stale = remove_stale_temp_files(outputs)
    if stale:
        print(f"spvis infer: removed {len(stale)} temporary files a killed run left in {out_dir}: "
              + ", ".join(p.name for p in stale), file=sys.stderr)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        order = run_all_videos(args, model, cfg, out_dir, log, done, settings)
    except BaseException:
        if created and not any(out_dir.iterdir()):  # a run that wrote nothing leaves no empty --out behind
            out_dir.rmdir()
        raise
    entries = [entry for video_id in order for entry in done[video_id]]
    write_results(out_dir / RESULTS_NAME, entries)
    named = "" if Path(args.input).suffix.lower() == ".json" else f"; video_id {videos[0][0]} is {videos[0][1]}"
    print(f"wrote {out_dir / RESULTS_NAME} ({len(entries)} entries{named})")
    return 0
