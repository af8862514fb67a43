"""Training data loading speed: clips per second with 0 and 2 workers on the synthetic benchmark.

Run on demand (not a test):  .venv/bin/python benchmarks/data_loading.py [--clips 60] [--frame-num 5]
Generates a small synthetic dataset in a temporary folder, then times ``build_train_loader`` after a
warm-up batch (worker start-up excluded), for each worker count. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def measure(cfg, dataset, workers: int, clips: int) -> tuple[float, float]:
    """(clips per second, seconds to the first batch) of an endless loader with ``workers`` workers."""
    from spvis.data.loader import build_train_loader

    cfg.DATALOADER.NUM_WORKERS = workers
    start = time.perf_counter()
    loader = iter(build_train_loader(cfg, dataset=dataset))
    next(loader)  # warm-up: worker start-up, first decode
    first = time.perf_counter() - start
    t0 = time.perf_counter()
    seen = 0
    while seen < clips:
        seen += len(next(loader))
    elapsed = time.perf_counter() - t0
    del loader  # stops the workers
    return seen / elapsed, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--clips", type=int, default=60, help="clips timed per setting")
    parser.add_argument("--frame-num", type=int, default=5, help="INPUT.SAMPLING_FRAME_NUM")
    parser.add_argument("--min-size", type=int, nargs="+", default=[240, 360, 480], help="INPUT.MIN_SIZE_TRAIN")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch", type=int, default=1, help="SOLVER.CLIPS_PER_DEVICE")
    args = parser.parse_args()

    import torch

    from spvis.config import get_cfg
    from spvis.data.clip_dataset import ClipDataset
    from spvis.data.synth import generate_synthetic_dataset
    from spvis.data.ytvis import load_video_dataset

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="spvis-bench-") as tmp:
        info = generate_synthetic_dataset(tmp, videos=args.videos, frames=args.frames, size=args.size,
                                          valid_fraction=0.0, seed=0)
        ds = load_video_dataset(info["train_json"], info["train_image_root"])
        cfg = get_cfg()
        cfg.INPUT.SAMPLING_FRAME_NUM = args.frame_num
        cfg.INPUT.SAMPLING_FRAME_RANGE = max(2, args.frame_num // 2)
        cfg.INPUT.MIN_SIZE_TRAIN = list(args.min_size)
        cfg.SOLVER.CLIPS_PER_DEVICE = args.batch
        dataset = ClipDataset.from_config(cfg, ds)
        print(f"synthetic {args.videos} videos x {args.frames} frames {args.size}; clip = {args.frame_num} frames, "
              f"shortest edge {args.min_size}, flip on; {os.cpu_count()} CPU cores; {args.clips} clips timed")
        print(f"| workers | clips/s | frames/s | first batch (s) |")
        print(f"|--------:|--------:|---------:|----------------:|")
        for workers in args.workers:
            rate, first = measure(cfg, dataset, workers, args.clips)
            print(f"| {workers:>7} | {rate:>7.1f} | {rate * args.frame_num:>8.1f} | {first:>15.2f} |")


if __name__ == "__main__":
    main()
