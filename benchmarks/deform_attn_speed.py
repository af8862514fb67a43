"""Multi-scale deformable attention op alone: fused embedding_bag core vs the official per-level loop.

Sizes are those of the R50 pixel decoder (3 levels at strides 8/16/32, 8 heads, 32 channels per head,
4 points) for the given input size. Forward and forward+backward, ms per call, median of repeats.

    .venv/bin/python benchmarks/deform_attn_speed.py
    .venv/bin/python benchmarks/deform_attn_speed.py --sizes 360x640 480x854 --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from spvis.modeling.ms_deform_attn import ms_deform_attn_core, ms_deform_attn_reference


def level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Backbone level sizes for strides 8, 16, 32 after padding to 32 (ResNet rounding)."""
    hp, wp = math.ceil(height / 32) * 32, math.ceil(width / 32) * 32
    return [(hp // s, wp // s) for s in (8, 16, 32)]


def timed(fn, repeats: int) -> float:
    fn()
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        values.append(1000 * (time.perf_counter() - start))
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["360x640", "480x854"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    heads, channels, points = 8, 32, 4
    print(f"MSDeformAttn core, CPU, {args.threads} threads, 8 heads x 32 ch, 3 levels, 4 points; ms per call")
    header = f"{'size':>8s} {'queries':>8s} {'impl':>10s} {'forward':>9s} {'fwd+bwd':>9s}"
    print(header + "\n" + "-" * len(header))
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        shapes = level_shapes(height, width)
        tokens = sum(h * w for h, w in shapes)
        value = torch.randn(1, tokens, heads, channels)
        locations = torch.rand(1, tokens, heads, len(shapes), points, 2) * 1.2 - 0.1
        weights = torch.rand(1, tokens, heads, len(shapes), points).softmax(-1)
        results = {}
        for name, core in (("official", ms_deform_attn_reference), ("ours", ms_deform_attn_core)):
            with torch.no_grad():
                forward = timed(lambda: core(value, shapes, locations, weights), args.repeats)
            inputs = [t.clone().requires_grad_(True) for t in (value, locations, weights)]

            def step():
                core(inputs[0], shapes, inputs[1], inputs[2]).sum().backward()

            both = timed(step, args.repeats)
            results[name] = (forward, both)
            print(f"{size:>8s} {tokens:8d} {name:>10s} {forward:9.1f} {both:9.1f}")
        print(f"{size:>8s} {'':8s} {'speed-up':>10s} {results['official'][0] / results['ours'][0]:8.2f}x "
              f"{results['official'][1] / results['ours'][1]:8.2f}x")


if __name__ == "__main__":
    main()
