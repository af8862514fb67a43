"""Peak RSS of offline inference versus video length (run on demand; prints a table).

Each (frames, budget) point runs in a fresh subprocess so ru_maxrss is that run's own peak. The model is
the tiny synthetic-recipe architecture (configs/synth/Base-synth.yaml dims) with random weights: memory
does not depend on the weight values. Frames are generated on the fly (moving squares), so the source
itself holds no video in memory and can be re-read by pass 2.

    python benchmarks/offline_memory.py --frames 100 500 1000 --budget-gb 0 1.0 --size 32x48
    python benchmarks/offline_memory.py --refiner-only --frames 100 1000 5000 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


class MovingSquares:
    """A re-iterable synthetic video: uint8 RGB frames made per index (nothing stored)."""

    def __init__(self, num_frames: int, height: int, width: int):
        self.name, self.num_frames, self.height, self.width, self.fps = "squares", num_frames, height, width, 10

    def __iter__(self):
        for t in range(self.num_frames):
            frame = np.full((self.height, self.width, 3), 40, dtype=np.uint8)
            for k, color in enumerate(((220, 60, 60), (60, 220, 60), (60, 60, 220))):
                y = int((self.height - 40) * (0.5 + 0.4 * np.sin(0.05 * t + 2 * k)))
                x = int((self.width - 40) * (0.5 + 0.4 * np.cos(0.03 * t + k)))
                frame[y:y + 40, x:x + 40] = color
            yield frame


def tiny_cfg():
    """The synthetic recipe's architecture (Base-synth.yaml) with the refiner on."""
    from spvis.config import get_cfg

    cfg = get_cfg()
    m = cfg.MODEL
    m.DEVICE, m.NUM_CLASSES = "cpu", 6
    m.BACKBONE.NAME, m.BACKBONE.WIDTH = "tiny", 16
    m.PIXEL_DECODER.CONV_DIM = m.PIXEL_DECODER.MASK_DIM = 64
    m.PIXEL_DECODER.ENC_LAYERS, m.PIXEL_DECODER.ENC_FFN, m.PIXEL_DECODER.NHEADS = 2, 256, 4
    m.DECODER.HIDDEN_DIM, m.DECODER.NUM_QUERIES, m.DECODER.NHEADS = 64, 16, 4
    m.DECODER.DIM_FEEDFORWARD, m.DECODER.DEC_LAYERS = 256, 3
    m.TRACKER.DECODER_LAYERS = m.REFINER.DECODER_LAYERS = 2
    m.REFINER.ENABLED = True
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 192, 256
    cfg.TEST.MODE = "offline"
    return cfg


def child(num_frames: int, budget_gb: float, height: int, width: int) -> dict:
    """One measurement in this process: build, run offline once, report peak RSS."""
    import torch

    from spvis.engine.offline import run_offline
    from spvis.modeling.meta_arch import SPVISModel

    torch.manual_seed(0)
    torch.set_num_threads(2)
    cfg = tiny_cfg()
    cfg.INPUT.MIN_SIZE_TEST = min(height, width)  # no resize: the frames are used at their own size
    cfg.INPUT.MAX_SIZE_TEST = max(height, width)
    model = SPVISModel.from_config(cfg).eval()
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = run_offline(model, cfg, MovingSquares(num_frames, height, width), max_memory_gb=budget_gb)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"frames": num_frames, "budget_gb": budget_gb, "peak_rss_mb": round(peak_mb, 1),
            "model_rss_mb": round(base_mb, 1), "seconds": round(seconds, 1), "entries": len(result.entries)}


def refiner_child(num_frames: int) -> dict:
    """Peak RSS added by one eval-mode refiner pass over ``num_frames`` frames (tiny dims, Q = 16)."""
    import torch

    from spvis.modeling.refiner import build_refiner

    torch.manual_seed(0)
    torch.set_num_threads(2)
    cfg = tiny_cfg()
    refiner = build_refiner(cfg).eval()
    q, c = cfg.MODEL.DECODER.NUM_QUERIES, cfg.MODEL.DECODER.HIDDEN_DIM
    instance, memory = torch.randn(1, num_frames, q, c), torch.randn(1, num_frames, q, c)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    with torch.no_grad():
        refiner(instance, memory)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"frames": num_frames, "refiner_extra_mb": round(peak_mb - base_mb, 1), "seconds": round(seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 500, 1000], help="video lengths")
    parser.add_argument("--budget-gb", type=float, nargs="+", default=[0.0, 1.0],
                        help="offline --max-memory-gb values (0 = recompute every mask feature in pass 2; "
                             "1.0 caches every frame's features at this size, as DVIS keeps them)")
    parser.add_argument("--size", default="64x96", help="frame size HxW")
    parser.add_argument("--refiner-only", action="store_true",
                        help="measure only the refiner pass over random queries (fast; isolates its T-dependence)")
    parser.add_argument("--child", nargs=2, metavar=("FRAMES", "BUDGET"), help=argparse.SUPPRESS)
    parser.add_argument("--refiner-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    if args.refiner_child:
        print(json.dumps(refiner_child(args.refiner_child)))
        return 0
    if args.refiner_only:
        print("| frames | refiner peak RSS added MB | seconds |")
        print("|---:|---:|---:|")
        for frames in args.frames:
            out = subprocess.run([sys.executable, __file__, "--refiner-child", str(frames)], check=True,
                                 capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {r['frames']} | {r['refiner_extra_mb']} | {r['seconds']} |", flush=True)
        return 0
    if args.child:
        print(json.dumps(child(int(args.child[0]), float(args.child[1]), height, width)))
        return 0
    rows = []
    for frames in args.frames:
        for budget in args.budget_gb:
            out = subprocess.run([sys.executable, __file__, "--size", args.size, "--child", str(frames), str(budget)],
                                 check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"done: {rows[-1]}", file=sys.stderr)
    print(f"offline mode, tiny model, {height}x{width} frames, 2 threads")
    print("| frames | budget GB | peak RSS MB | model-only RSS MB | seconds | entries |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['frames']} | {r['budget_gb']} | {r['peak_rss_mb']} | {r['model_rss_mb']} | {r['seconds']} "
              f"| {r['entries']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
