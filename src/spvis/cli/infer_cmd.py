"""``spvis infer``: run a trained model on a video, a frame folder or every video of a dataset json.

Writes ``OUT/results.json`` (benchmark format, one entry per track and class; scorable with ``spvis eval``
when the input is a dataset json) and ``OUT/<video>.mp4`` overlays with coloured, id-labelled masks.
Online mode streams frames through segmenter + tracker with flat memory; offline mode adds the refiner.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spvis.engine.inference import VideoJob, iter_jobs, load_model, run_video  # noqa: F401 (tests patch these)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "infer", help="segment and track instances in a video, frame folder or dataset json",
        description="Run a model on VIDEO.mp4, a FRAME_DIR or a DATASET_JSON (with --image-root). Writes "
                    "OUT/results.json and one OUT/<video>.mp4 overlay per video.")
    parser.add_argument("--input", required=True, help="video file, folder of frames, or YTVIS-format json")
    parser.add_argument("--image-root", help="frame root of a dataset json (YouTube-VIS layout)")
    parser.add_argument("--weights", help="model weights (.safetensors written by spvis; default: the built-in "
                                          "demo model, trained on the procedural benchmark)")
    parser.add_argument("--config", help="config YAML (default: the one saved beside the weights)")
    parser.add_argument("--mode", choices=("online", "offline"), default="online",
                        help="online: frame by frame, flat memory; offline: adds the temporal refiner")
    parser.add_argument("--tracker", choices=("learned", "minvis"),
                        help="online association: learned (the trained tracker, default TEST.TRACKER) or minvis "
                             "(segmenter + Hungarian matching of query embeddings between frames; works with "
                             "segmenter-only weights)")
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
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=run)


def planned_outputs(args: argparse.Namespace, out_dir: Path) -> list[Path]:
    """Every file this run may write: results.json and one overlay per video (named as ``iter_jobs`` names them)."""
    outputs = [out_dir / "results.json"]
    if not args.no_overlay:
        source = Path(args.input)
        if source.suffix.lower() == ".json":
            outputs += sorted(p for p in out_dir.glob("*.mp4"))  # overlays are named by video id
        else:
            outputs.append(out_dir / f"{source.stem if source.is_file() else source.name}.mp4")
    return outputs


def run(args: argparse.Namespace) -> int:
    from spvis.errors import SpvisError
    from spvis.utils.atomic_io import check_output_dir, refuse_overwriting_inputs

    if args.max_frames is not None and args.max_frames < 1:
        raise SpvisError(f"--max-frames must be at least 1, got {args.max_frames}")
    if not Path(args.input).exists():
        raise SpvisError(f"{args.input}: no such file or folder (--input)")
    if not 0.0 <= args.score_thr <= 1.0:  # also false for nan
        raise SpvisError(f"--score-thr must be a number in [0, 1], got {args.score_thr}")
    out_dir = check_output_dir(args.out)
    refuse_overwriting_inputs(planned_outputs(args, out_dir),
                              [("--input", args.input), ("--weights", args.weights), ("--config", args.config)])
    for flag, value in (("--max-memory-gb", args.max_memory_gb), ("--window-size", args.window_size)):
        if value is not None and args.mode != "offline":
            raise SpvisError(f"{flag} applies to --mode offline only")
        if value is not None and not value >= (0 if flag == "--max-memory-gb" else 1):
            raise SpvisError(f"{flag} must be {'>= 0' if flag == '--max-memory-gb' else '>= 1'}, got {value}")
    model, cfg = load_model(args.weights, args.config, list(args.overrides))
    if args.tracker is not None:
        cfg.TEST.TRACKER = args.tracker
    if args.mode == "offline" and cfg.TEST.TRACKER == "minvis":
        raise SpvisError("--tracker minvis is an online association (the refiner needs the learned tracker); "
                         "use --mode online")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    for job in iter_jobs(args.input, args.image_root, cfg, args.max_frames):
        result = run_video(model, cfg, job, mode=args.mode, out_dir=None if args.no_overlay else out_dir,
                           score_thr=args.score_thr, max_frames=args.max_frames,
                           max_memory_gb=args.max_memory_gb, window_size=args.window_size)
        if result.truncated:
            print(f"spvis infer: warning: {job.name}: {result.error}; kept the {result.num_frames} frames read",
                  file=sys.stderr)
        entries.extend(result.entries)
    from spvis.evaluation.results_io import write_results

    write_results(out_dir / "results.json", entries)
    print(f"wrote {out_dir / 'results.json'} ({len(entries)} entries)")
    return 0

