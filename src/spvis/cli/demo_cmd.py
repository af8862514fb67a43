"""``spvis demo``: the whole system on a fresh machine, no downloads, no user data.

Generates a few new procedural videos (``spvis synth`` with a seed the demo model never saw), runs the
demo model shipped inside the package on them in online mode (segmenter + Progressive Tracker, frame by
frame) and offline mode (+ temporal refiner), writes results files and overlay videos, and scores both
against the generated ground truth with the official-equal metrics.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from spvis.cli.device_args import add_device_arguments, apply_threads, device_overrides
from spvis.engine.inference import BUILTIN_WEIGHTS as DEMO_WEIGHTS

DEMO_SEED = 20261125  # the demo model was trained on seed-0 videos; these are new ones


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the built-in demo model on freshly generated videos and score it",
        description="Generate procedural videos, run the packaged demo model online and offline, write "
                    "results.json + overlay videos per mode and print AP / HOTA / IDF1 for both.")
    parser.add_argument("--out", default="spvis_demo_output", help="output folder (default: %(default)s)")
    parser.add_argument("--videos", type=int, default=3, help="number of videos to generate")
    parser.add_argument("--frames", type=int, default=20, help="frames per video")
    parser.add_argument("--occlusion", default="heavy", choices=("none", "light", "medium", "heavy"),
                        help="occlusion level (default: the benchmark's %(default)s)")
    parser.add_argument("--frame-stride", type=int, default=2,
                        help="keep every K-th frame of the motion (default: the benchmark's %(default)s)")
    parser.add_argument("--size", default="192x256",
                        help="frame size HxW of the generated videos (default: the benchmark's %(default)s; "
                             "the model resizes them to its test size itself)")
    parser.add_argument("--modes", default="online,offline", help="comma-separated: online, offline")
    parser.add_argument("--weights", default=str(DEMO_WEIGHTS),
                        help="model weights (default: the demo model shipped with the package)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="seed of the generated videos")
    add_device_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spvis.engine.inference import iter_jobs, load_model, run_video
    from spvis.data.synth import generate_synthetic_dataset
    from spvis.errors import SpvisError
    from spvis.evaluation import evaluate, write_results
    from spvis.evaluation.report import format_metrics
    from spvis.utils.atomic_io import atomic_write_json

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - {"online", "offline"})
    if unknown or not modes:
        raise SpvisError(f"--modes takes online and/or offline, got {args.modes!r}")
    if not Path(args.weights).is_file():
        raise SpvisError(f"{args.weights}: demo weights not found (build them with scripts/build_demo_model.sh)")
    apply_threads(args)
    model, cfg = load_model(args.weights, None, device_overrides(args))
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SpvisError(f"--size takes HxW, e.g. 192x256, got {args.size!r}") from None
    out = Path(args.out)
    print(f"[1/3] generating {args.videos} procedural videos ({args.frames} frames, {height}x{width}, "
          f"occlusion {args.occlusion}, frame stride {args.frame_stride}) in {out / 'videos'}")
    written = generate_synthetic_dataset(out / "videos", videos=args.videos, frames=args.frames,
                                         size=(height, width), categories=cfg.MODEL.NUM_CLASSES,
                                         occlusion=args.occlusion, frame_stride=args.frame_stride,
                                         valid_fraction=0.0, seed=args.seed)
    gt_json, image_root = Path(written["train_json"]), Path(written["train_image_root"])
    summary = {}
    for step, mode in enumerate(modes, start=2):
        if mode == "offline" and not cfg.MODEL.REFINER.ENABLED:
            print(f"[{step}/3] offline: skipped (this model has no refiner)")
            continue
        mode_dir = out / mode
        mode_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{step}/3] {mode}: running the demo model, overlays in {mode_dir}")
        start = time.perf_counter()
        entries, frames = [], 0
        for job in iter_jobs(str(gt_json), str(image_root), cfg):
            result = run_video(model, cfg, job, mode=mode, out_dir=mode_dir, score_thr=0.0, max_frames=None)
            entries.extend(result.entries)
            frames += result.num_frames
        elapsed = time.perf_counter() - start
        write_results(mode_dir / "results.json", entries)
        metrics = evaluate(gt_json, mode_dir / "results.json")
        atomic_write_json(mode_dir / "metrics.json", metrics, indent=1)
        print(f"\n{mode}: {frames} frames in {elapsed:.1f} s ({frames / max(elapsed, 1e-9):.1f} frames/s)")
        print(format_metrics(metrics))
        summary[mode] = metrics
    print("\nsummary (x100):")
    for mode, metrics in summary.items():
        tracking = metrics["tracking"]["class_avg"]
        print(f"  {mode:8s} AP {100 * metrics['AP']:5.1f}  AP50 {100 * metrics['AP50']:5.1f}  "
              f"HOTA {100 * tracking['HOTA']:5.1f}  IDF1 {100 * tracking['IDF1']:5.1f}  IDSW {tracking['IDSW']:.0f}")
    print(f"outputs: {out}/<mode>/results.json, metrics.json and one overlay .mp4 per video")
    return 0
