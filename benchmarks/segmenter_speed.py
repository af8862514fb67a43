"""CPU speed of the R50 segmenter, per component, ours vs the official algorithm.

"official" = the official CPU code path re-created with our modules: deformable attention through the
per-level grid_sample loop (ms_deform_attn_core_pytorch), FrozenBN applied after each conv, and full
stride-4 masks for every decoder layer. "ours" = the fused embedding_bag deformable attention, FrozenBN
folded into the conv weights and the decoder's level-size attention masks. Both compute the same function (tests check it). Each configuration runs in a fresh child process
so the reported peak RSS is its own. Random weights: speed does not depend on values.

    .venv/bin/python benchmarks/segmenter_speed.py                # 360x640 and 480x854, 2 threads
    .venv/bin/python benchmarks/segmenter_speed.py --sizes 360x640 --frames 2 --repeats 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time


def _child(mode: str, height: int, width: int, frames: int, repeats: int, threads: int, queue) -> None:
    import torch

    from spvis.config import get_cfg
    from spvis.modeling.backbone import ConvNorm
    from spvis.modeling.meta_arch import SPVISModel
    from spvis.modeling.ms_deform_attn import MSDeformAttn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = get_cfg()  # official R50 architecture: 100 queries, 256-d, 6 encoder + 9 decoder layers
    cfg.MODEL.TRACKER.ENABLED = False
    model = SPVISModel.from_config(cfg).eval()
    official = mode == "official"
    for module in model.modules():
        if isinstance(module, MSDeformAttn):
            module.use_reference_core = official
        if isinstance(module, ConvNorm):
            module.fold_frozen_norm = not official
    predictor = model.sem_seg_head.predictor
    predictor.train(official)  # dropout is 0: train mode only switches on the full per-layer masks
    images = model.preprocess(torch.randint(0, 255, (frames, 3, height, width), dtype=torch.uint8))
    timings: dict[str, list[float]] = {"backbone": [], "pixel decoder": [], "transformer decoder": []}
    with torch.no_grad():
        for repeat in range(repeats + 1):  # the first run warms up allocators and kernels
            start = time.perf_counter()
            features = model.backbone(images)
            t1 = time.perf_counter()
            mask_features, multi_scale = model.sem_seg_head.pixel_decoder(features)
            t2 = time.perf_counter()
            predictor(multi_scale, mask_features)
            t3 = time.perf_counter()
            if repeat:
                for name, value in zip(timings, (t1 - start, t2 - t1, t3 - t2)):
                    timings[name].append(1000 * value / frames)
    result = {name: statistics.median(values) for name, values in timings.items()}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def run(mode: str, height: int, width: int, frames: int, repeats: int, threads: int) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(mode, height, width, frames, repeats, threads, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["360x640", "480x854"], help="HxW input sizes")
    parser.add_argument("--frames", type=int, default=2, help="frames per forward (a window)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (= cores)")
    args = parser.parse_args()
    print(f"R50 segmenter, CPU, {args.threads} threads, {args.frames} frames per forward, median of {args.repeats}")
    header = f"{'size':>8s} {'impl':>9s} {'backbone':>9s} {'pix.dec':>9s} {'trf.dec':>9s} {'total':>9s} {'peak RSS':>9s}"
    print(header + "\n" + "-" * len(header))
    for size in args.sizes:
        height, width = (int(v) for v in size.lower().split("x"))
        totals = {}
        for mode in ("official", "ours"):
            r = run(mode, height, width, args.frames, args.repeats, args.threads)
            total = r["backbone"] + r["pixel decoder"] + r["transformer decoder"]
            totals[mode] = total
            print(f"{size:>8s} {mode:>9s} {r['backbone']:9.0f} {r['pixel decoder']:9.0f} "
                  f"{r['transformer decoder']:9.0f} {total:9.0f} {r['peak_rss_mb']:7.0f}MB")
        print(f"{size:>8s} speed-up {totals['official'] / totals['ours']:.2f}x  (ms per frame)")


if __name__ == "__main__":
    main()
