"""``spvis infer``: run a trained model on a video, a frame folder or every video of a dataset json.

Writes ``OUT/results.json`` (benchmark format, one entry per track and class; scorable with ``spvis eval``
when the input is a dataset json) and ``OUT/<video>.mp4`` overlays with coloured, id-labelled masks.
Online mode streams frames through segmenter + tracker with flat memory; offline mode adds the refiner.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterator, Sequence

DEFAULT_FPS = 10.0  # overlay frame rate when the input has none (frame folders, datasets)
SINGLE_VIDEO_ID = 1  # results.json needs an integer video id; a lone video/folder gets this one


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


@dataclass
class VideoJob:
    """One video to run: its results id, a frame source and the label maps for output."""

    video_id: int
    name: str
    source: Any  # spvis.data.frames source: .name, .fps, .truncated, .error, iterable of (H, W, 3) uint8
    category_ids: Sequence[int] | None
    class_names: Sequence[str]


def run(args: argparse.Namespace) -> int:
    from spvis.errors import SpvisError

    if args.max_frames is not None and args.max_frames < 1:
        raise SpvisError(f"--max-frames must be at least 1, got {args.max_frames}")
    if not Path(args.input).exists():
        raise SpvisError(f"{args.input}: no such file or folder (--input)")
    for flag, value in (("--max-memory-gb", args.max_memory_gb), ("--window-size", args.window_size)):
        if value is not None and args.mode != "offline":
            raise SpvisError(f"{flag} applies to --mode offline only")
        if value is not None and not value >= (0 if flag == "--max-memory-gb" else 1):
            raise SpvisError(f"{flag} must be {'>= 0' if flag == '--max-memory-gb' else '>= 1'}, got {value}")
    if args.weights is None:
        from spvis.cli.demo_cmd import DEMO_WEIGHTS

        args.weights = str(DEMO_WEIGHTS)
    model, cfg = load_model(args.weights, args.config, list(args.overrides))
    if args.tracker is not None:
        cfg.TEST.TRACKER = args.tracker
    if args.mode == "offline" and cfg.TEST.TRACKER == "minvis":
        raise SpvisError("--tracker minvis is an online association (the refiner needs the learned tracker); "
                         "use --mode online")
    out_dir = Path(args.out)
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


def load_model(weights: str, config: str | None, overrides: list[str]):
    """Model + config from our weights; a config that does not fit the weights is a one-line error."""
    import torch

    from spvis.checkpoints import load_weights
    from spvis.config import load_config
    from spvis.modeling.meta_arch import SPVISModel

    state, saved_cfg = load_weights(weights)
    if config is not None:
        cfg = load_config(config, overrides)
    else:
        cfg = saved_cfg
        cfg.merge_overrides(overrides)
    model = SPVISModel.from_config(cfg)
    check_state_dict_fits(model, state, weights)
    model.load_state_dict(state, strict=True)
    device = cfg.MODEL.DEVICE
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval(), cfg


def check_state_dict_fits(model, state: dict, weights: str) -> None:
    """CheckpointError naming the first missing / unexpected / mis-shaped keys when weights and config differ."""
    from spvis.errors import CheckpointError

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", misshaped)):
        if keys:
            problems.append(f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
    if problems:
        raise CheckpointError(f"{weights}: weights do not match the config: {'; '.join(problems)}")


def _names_for(num_classes: int) -> list[str]:
    """Class names of the builtin dataset with this many classes (overlay labels), else none."""
    from spvis.data.categories import OVIS_NAMES, YTVIS_2019_NAMES

    return {len(YTVIS_2019_NAMES): YTVIS_2019_NAMES, len(OVIS_NAMES): OVIS_NAMES}.get(num_classes, [])


def iter_jobs(input_path: str, image_root: str | None, cfg, max_frames: int | None = None) -> Iterator[VideoJob]:
    """The videos named by --input: every video of a dataset json, or the one video / frame folder."""
    from spvis.data import load_video_dataset, open_frame_source
    from spvis.errors import SpvisError

    path = Path(input_path)
    if path.suffix.lower() == ".json":
        dataset = load_video_dataset(path, image_root)
        if dataset.num_classes != cfg.MODEL.NUM_CLASSES:
            raise SpvisError(f"{path}: field 'categories': {dataset.num_classes} categories but the model "
                             f"predicts MODEL.NUM_CLASSES = {cfg.MODEL.NUM_CLASSES}")
        for record in dataset.videos:
            source = open_frame_source(record, image_root=dataset.image_root or path.parent, max_frames=max_frames)
            yield VideoJob(record.id, f"{record.id}", source, dataset.contiguous_to_dataset_id,
                           dataset.class_names)
        return
    if image_root is not None:
        raise SpvisError("--image-root is only used with a dataset json --input")
    source = open_frame_source(path, max_frames=max_frames)
    yield VideoJob(SINGLE_VIDEO_ID, path.stem if path.is_file() else path.name, source, None,
                   _names_for(cfg.MODEL.NUM_CLASSES))


def run_video(model, cfg, job: VideoJob, *, mode: str, out_dir: Path | None, score_thr: float,
              max_frames: int | None, max_memory_gb: float | None = None, window_size: int | None = None):
    """Infer one video (online stream or offline engine), writing its overlay when ``out_dir`` is set."""
    from tqdm import tqdm

    from spvis.engine.frame_result import VideoResult
    from spvis.engine.streaming import OnlineTracker
    from spvis.errors import SpvisError

    total = job.source.num_frames
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    writer = _overlay_writer(out_dir, job)
    bar = tqdm(total=total, desc=job.name, unit="frame", file=sys.stderr)
    overlay_thr = max(score_thr, 0.5)

    def on_frame(frame_result, frame) -> None:
        if writer is not None:
            from spvis.viz.overlay import draw_overlay

            keep = frame_result.scores >= overlay_thr
            writer.write(draw_overlay(frame, frame_result.masks[keep], frame_result.track_ids[keep],
                                      frame_result.labels[keep], job.class_names, frame_result.scores[keep]))
        bar.update(1)

    try:
        if mode == "offline":
            from spvis.engine.offline import run_offline

            source = _LimitedSource(job.source, max_frames) if max_frames is not None else job.source
            result = run_offline(model, cfg, source, max_memory_gb, window_size, video_id=job.video_id,
                                 category_ids=job.category_ids, frame_callback=lambda fr: on_frame(fr, fr.frame))
        else:
            engine = OnlineTracker(model, cfg, score_thr=overlay_thr, keep_frames=writer is not None)
            for frame_result in engine.stream(islice(iter(job.source), max_frames), source=job.name):
                on_frame(frame_result, frame_result.frame)
            if engine.frame_size is None:
                raise SpvisError(f"{job.name}: {getattr(job.source, 'error', None) or 'the input has no frames'}")
            result = engine.video_result(job.video_id, category_ids=job.category_ids, score_thr=score_thr,
                                         truncated=bool(getattr(job.source, "truncated", False)),
                                         error=getattr(job.source, "error", None))
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    if writer is not None:
        writer.close()
    if mode == "offline" and score_thr > 0:
        result = VideoResult(result.video_id, result.num_frames, result.height, result.width,
                             [e for e in result.entries if e["score"] >= score_thr], result.truncated, result.error)
    return result


def _overlay_writer(out_dir: Path | None, job: VideoJob):
    if out_dir is None:
        return None
    from spvis.viz.video_writer import VideoWriter

    return VideoWriter(out_dir / f"{job.name}.mp4", fps=getattr(job.source, "fps", None) or DEFAULT_FPS)


class _LimitedSource:
    """A frame source cut to its first ``limit`` frames (re-iterable, as the offline engine needs)."""

    def __init__(self, source: Any, limit: int):
        self._source, self._limit = source, limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def __iter__(self) -> Iterator:
        return islice(iter(self._source), self._limit)
