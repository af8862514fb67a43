"""What the export-friendly deformable attention costs: the segmenter per frame, eager and onnxruntime, both cores.

ONNX graphs use the per-level ``grid_sample`` core (exported as ONNX GridSample); eager inference uses the fused
``embedding_bag`` core. This times the built-in model's segmenter (``SPVISModel.segment`` on one normalised 192x256
input) four ways: eager with each core, and onnxruntime (CPU provider) on a graph exported with each core (the fused
one exports through torch.export too, as an EmbeddingBag decomposition). Median ms over ``--frames`` rounds (one call
of each path per round, so load changes hit all alike) after ``--warmup``, at ``--threads`` threads (torch and
onnxruntime alike). Prints a table.

    python benchmarks/export_speed.py --threads 1 --frames 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from spvis.engine.inference import load_model
from spvis.export.exporter import _export_graph
from spvis.export.graphs import SEGMENTER_IO, SegmenterGraph, attention_core
from spvis.export.runners import OnnxRunner


def interleaved_ms(paths: dict, frames: int, warmup: int) -> dict[str, float]:
    """Median wall ms per call of every path in ``paths`` ({name: fn}), timed in alternating rounds (one call of
    each per round) so that a change in the machine's load hits every path alike; ``warmup`` rounds untimed."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_index in range(warmup + frames):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            if round_index >= warmup:
                times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(None, None, ["MODEL.DEVICE=cpu"])
    graph = SegmenterGraph(model)
    images = torch.randn(1, 3, 192, 256, generator=torch.Generator().manual_seed(0))
    paths, diffs, export_s = {}, {}, {}
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        reference = graph(images)
        for core in ("fused", "grid_sample"):
            path = Path(tmp) / f"{core}.onnx"
            start = time.perf_counter()
            with attention_core(model, core):
                _export_graph(graph, (images,), (SEGMENTER_IO[0], SEGMENTER_IO[1]), path, "onnx", 18)
                diffs[f"eager, {core} core"] = max(float((a - b).abs().max()) for a, b in zip(reference, graph(images)))
            export_s[core] = time.perf_counter() - start
            runner = OnnxRunner(path, SEGMENTER_IO[0])
            diffs[f"onnxruntime, {core} core"] = max(float((a - b).abs().max())
                                                     for a, b in zip(reference, runner(images)))
            paths[f"onnxruntime, {core} core"] = lambda runner=runner: runner(images)

            def eager(core=core):
                with attention_core(model, core):
                    graph(images)
            paths[f"eager, {core} core"] = eager
        ms = interleaved_ms(paths, args.frames, args.warmup)
    rows = [(name, ms[name], diffs[name]) for name in sorted(paths, key=lambda n: (n.split(",")[1], n))]
    print("export seconds: " + ", ".join(f"{core} core {s:.0f} s" for core, s in export_s.items()))
    print(f"\nsegmenter of the built-in model, one 192x256 input, {args.threads} thread(s), median of {args.frames}")
    print("| path | ms/frame | max abs diff to eager fused |")
    print("|---|---|---|")
    for name, ms, diff in rows:
        print(f"| {name} | {ms:.1f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
