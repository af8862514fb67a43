"""Soak benchmark (issue 33): long online inference at flat memory, and offline peak memory against --max-memory-gb.

Online: the built-in demo model (``spvis.load("demo")``) streams ``--frames`` procedurally generated frames through
the engine ``spvis infer`` uses (``OnlineTracker.stream``, then the video's result entries); the process's
resident memory (RSS, /proc/self/statm) is sampled every ``--every`` frames and printed as a table with the
least-squares slope in MB per 1000 frames after the warm-up (the first 10 % of the frames). The result entries
grow with the video (one RLE per track and frame), so a small positive slope is expected; the check is that it
stays under ``--max-slope`` MB per 1000 frames.

Offline: for each ``--budgets`` value, a fresh process runs the offline engine (segmenter, tracker, refiner) over
``--offline-frames`` frames with ``max_memory_gb`` = that budget and reports its peak RSS (ru_maxrss), the RSS
with the model loaded, and what the run added: the cached mask features follow the budget (0 recomputes them).

Frames are made on the fly (discs moving over a fixed texture), so the source holds no video in memory. The model
runs at the frame size (INPUT.MIN/MAX_SIZE_TEST set to it) unless ``--model-size``: the demo model's own test size
(288 px) costs ~6x more time per frame.

    python benchmarks/soak.py                                  # 10,000 online frames + 1,000 offline, 96x128
    python benchmarks/soak.py --frames 200 --offline-frames 100 --budgets 0 0.05   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Iterator

import numpy as np


class MovingDiscs:
    """A re-iterable synthetic video of ``num_frames`` uint8 RGB (H, W, 3) frames, each made when asked for."""

    def __init__(self, num_frames: int, height: int, width: int, seed: int = 0):
        self.name, self.num_frames, self.height, self.width, self.fps = "discs", num_frames, height, width, 10.0
        rng = np.random.default_rng(seed)
        self.background = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
        self.centres = rng.uniform([0, 0], [height, width], (4, 2))
        self.speeds = rng.uniform(-2, 2, (4, 2))
        self.colours = rng.integers(120, 255, (4, 3), dtype=np.uint8)
        self.yy, self.xx = np.mgrid[:height, :width]

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        radius2 = (min(self.height, self.width) / 8) ** 2
        for t in range(self.num_frames):
            frame = self.background.copy()
            for centre, speed, colour in zip(self.centres, self.speeds, self.colours):
                cy, cx = (centre + t * speed) % (self.height, self.width)
                frame[(self.yy - cy) ** 2 + (self.xx - cx) ** 2 < radius2] = colour
            yield frame


def rss_mb() -> float:
    """Resident memory of this process now (not the peak), in MB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_demo(height: int, width: int, model_size: bool, threads: int):
    """(model, cfg) of the built-in demo model on the CPU, at the frame size unless ``model_size``."""
    import torch

    import spvis

    torch.set_num_threads(threads)
    overrides = [] if model_size else [f"INPUT.MIN_SIZE_TEST={min(height, width)}",
                                       f"INPUT.MAX_SIZE_TEST={max(height, width)}"]
    segmenter = spvis.load("demo", device="cpu", overrides=overrides)
    return segmenter.model, segmenter.cfg


def slope_per_1000(frames: list[int], values: list[float]) -> float:
    """Least-squares slope of ``values`` over ``frames``, in units per 1000 frames (0 for fewer than 2 points)."""
    if len(frames) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(frames, float), np.asarray(values, float), 1)[0]) * 1000


def online_soak(args: argparse.Namespace, height: int, width: int) -> bool:
    """Stream ``args.frames`` frames, print the RSS table and the slope; True when the slope is under the limit."""
    import torch

    from spvis.engine.streaming import OnlineTracker

    model, cfg = load_demo(height, width, args.model_size, args.threads)
    every = args.every or max(1, args.frames // 20)
    engine = OnlineTracker(model, cfg, score_thr=0.5)
    samples: list[tuple[int, float, float]] = []  # (frames done, RSS MB, seconds)
    start = time.perf_counter()
    with torch.inference_mode():
        for result in engine.stream(iter(MovingDiscs(args.frames, height, width))):
            done = result.frame_index + 1
            if done == 1 or done % every == 0 or done == args.frames:
                samples.append((done, rss_mb(), time.perf_counter() - start))
                print(f"  {done} frames: RSS {samples[-1][1]:.1f} MB", file=sys.stderr, flush=True)
    video = engine.video_result(1)
    rle_kib = sum(len(s["counts"]) for e in video.entries for s in e["segmentations"] if s) / 1024
    warm = max(1, args.frames // 10)
    fit = [(f, r) for f, r, _ in samples if f >= warm]
    slope = slope_per_1000([f for f, _ in fit], [r for _, r in fit])
    print(f"\nonline: demo model, {args.frames} frames of {height}x{width}, {args.threads} thread(s), "
          f"{'model' if args.model_size else 'frame'} size")
    print("| frames | RSS MB | change MB | s/frame so far |")
    print("|---:|---:|---:|---:|")
    for frames, rss, seconds in samples:
        print(f"| {frames} | {rss:.1f} | {rss - samples[0][1]:+.1f} | {seconds / frames:.3f} |")
    print(f"slope after {warm} frames: {slope:+.2f} MB per 1000 frames (limit {args.max_slope}); "
          f"{len(video.entries)} result entries holding {rle_kib:.0f} KiB of RLE")
    flat = slope <= args.max_slope
    print("online memory: " + ("flat" if flat else "GROWING"))
    return flat


def offline_child(frames: int, budget: float, height: int, width: int, model_size: bool, threads: int) -> dict:
    """One offline run in this (fresh) process: peak RSS, RSS with the model loaded, seconds, entries."""
    import torch

    from spvis.engine.offline import run_offline

    model, cfg = load_demo(height, width, model_size, threads)
    model_mb = peak_rss_mb()
    start = time.perf_counter()
    with torch.inference_mode():
        result = run_offline(model, cfg, MovingDiscs(frames, height, width), max_memory_gb=budget)
    return {"frames": frames, "budget_gb": budget, "peak_mb": round(peak_rss_mb(), 1), "model_mb": round(model_mb, 1),
            "seconds": round(time.perf_counter() - start, 1), "entries": len(result.entries)}


def offline_budgets(args: argparse.Namespace, height: int, width: int) -> None:
    rows = []
    for budget in args.budgets:
        command = [sys.executable, __file__, "--size", args.size, "--threads", str(args.threads),
                   "--offline-child", str(args.offline_frames), str(budget)] + (["--model-size"] if args.model_size
                                                                                else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  offline budget {budget} GB: {rows[-1]}", file=sys.stderr, flush=True)
    print(f"\noffline: demo model, {args.offline_frames} frames of {height}x{width}, {args.threads} thread(s), one "
          f"process per budget")
    print("| --max-memory-gb | peak RSS MB | RSS with model MB | added MB | budget MB | seconds | entries |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['budget_gb']:g} | {r['peak_mb']} | {r['model_mb']} | {r['peak_mb'] - r['model_mb']:.1f} | "
              f"{r['budget_gb'] * 1024:.0f} | {r['seconds']} | {r['entries']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000, help="online video length (default 10000)")
    parser.add_argument("--every", type=int, help="sample RSS every N frames (default frames / 20)")
    parser.add_argument("--offline-frames", type=int, default=1000, help="offline video length (default 1000)")
    parser.add_argument("--budgets", type=float, nargs="*", default=[0.0, 0.05, 0.1, 0.5],
                        help="offline --max-memory-gb values, one process each (none: skip the offline part)")
    parser.add_argument("--size", default="96x128", help="frame size HxW (default 96x128)")
    parser.add_argument("--model-size", action="store_true", help="resize frames to the demo model's test size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--max-slope", type=float, default=1.0,
                        help="online RSS growth allowed after the warm-up, MB per 1000 frames (default 1)")
    parser.add_argument("--skip-online", action="store_true", help="only the offline part")
    parser.add_argument("--offline-child", nargs=2, metavar=("FRAMES", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    if args.offline_child:
        print(json.dumps(offline_child(int(args.offline_child[0]), float(args.offline_child[1]), height, width,
                                       args.model_size, args.threads)))
        return 0
    if args.frames < 1 or args.offline_frames < 1:
        parser.error("--frames and --offline-frames must be at least 1")
    flat = True if args.skip_online else online_soak(args, height, width)
    if args.budgets:
        offline_budgets(args, height, width)
    return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
