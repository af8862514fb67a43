"""Peak RSS and ms/frame of streaming online inference for growing video lengths (flat-memory check).

Each length runs in a fresh process (ru_maxrss is a per-process peak) on the same tiny random-weight model
(configs/synth/Base-synth.yaml, tracker on) over a procedural video generated lazily (moving discs on a
textured background). Prints a table; the issue's target: peak at 1000 frames within 10 % of peak at 50.

    .venv/bin/python benchmarks/online_memory.py                      # 50, 200, 1000 frames at 192x256
    .venv/bin/python benchmarks/online_memory.py --pgt --set MODEL.TRACKER.PGT.BIRTH_SCORE_THR=0.2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "synth" / "Base-synth.yaml"
PGT_OVERRIDES = ["MODEL.TRACKER.PGT.MEMORY=True", "MODEL.TRACKER.PGT.PROGRESSIVE_REF=True",
                 "MODEL.TRACKER.PGT.CLIP_ASSOCIATION=True", "MODEL.TRACKER.PGT.LIFECYCLE=True"]


def synthetic_frames(count: int, height: int, width: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` uint8 RGB frames of discs moving over a fixed random texture, made one at a time."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
    centres = rng.uniform([0, 0], [height, width], (5, 2))
    speeds = rng.uniform(-3, 3, (5, 2))
    colours = rng.integers(120, 255, (5, 3))
    yy, xx = np.mgrid[:height, :width]
    for t in range(count):
        frame = background.copy()
        for centre, speed, colour in zip(centres, speeds, colours):
            cy, cx = (centre + t * speed) % (height, width)
            frame[(yy - cy) ** 2 + (xx - cx) ** 2 < (min(height, width) / 8) ** 2] = colour
        yield frame


def child(frames: int, height: int, width: int, pgt: bool, threads: int, extra: list[str]) -> dict:
    """Run the stream in this process; return peak RSS (MiB) and ms/frame after the first frame."""
    import torch

    from spvis.config import load_config
    from spvis.engine.streaming import OnlineTracker
    from spvis.modeling.meta_arch import SPVISModel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    overrides = ["MODEL.TRACKER.ENABLED=True", "MODEL.DEVICE=cpu", f"INPUT.MIN_SIZE_TEST={min(height, width)}",
                 f"INPUT.MAX_SIZE_TEST={max(height, width)}"] + (PGT_OVERRIDES if pgt else []) + extra
    cfg = load_config(CONFIG, overrides)
    model = SPVISModel.from_config(cfg).eval()
    engine = OnlineTracker(model, cfg, score_thr=0.5)
    start = None
    for result in engine.stream(synthetic_frames(frames, height, width)):
        if result.frame_index == 0:
            start = time.perf_counter()
    elapsed = time.perf_counter() - start
    video = engine.video_result(1)
    rle_bytes = sum(len(s["counts"]) for e in video.entries for s in e["segmentations"] if s)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"frames": frames, "peak_rss_mib": peak_kib / 1024, "ms_per_frame": 1000 * elapsed / max(1, frames - 1),
            "tracks": len(engine.accumulator.tracks), "result_rle_kib": rle_bytes / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--size", default="192x256", help="HxW of the synthetic frames")
    parser.add_argument("--pgt", action="store_true", help="switch every PGT part on")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    if args.child is not None:
        print(json.dumps(child(args.child, height, width, args.pgt, args.threads, args.set)))
        return
    rows = []
    for length in args.lengths:
        cmd = [sys.executable, __file__, "--child", str(length), "--size", args.size, "--threads", str(args.threads)]
        cmd += (["--pgt"] if args.pgt else []) + (["--set", *args.set] if args.set else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = rows[0]["peak_rss_mib"]
    print(f"online streaming, tiny synth model, {args.size}, PGT {'on' if args.pgt else 'off'}, {args.threads} threads")
    print(f"{'frames':>7} {'peak RSS MiB':>13} {'vs first':>9} {'ms/frame':>9} {'tracks':>7} {'RLE KiB':>8}")
    for row in rows:
        print(f"{row['frames']:>7} {row['peak_rss_mib']:>13.1f} {100 * (row['peak_rss_mib'] / base - 1):>+8.1f}% "
              f"{row['ms_per_frame']:>9.1f} {row['tracks']:>7} {row['result_rle_kib']:>8.1f}")


if __name__ == "__main__":
    main()
