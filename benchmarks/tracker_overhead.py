"""Tracker ms/frame as a fraction of the segmenter's, baseline DVIS tracker vs full PGT, same model.

Times three parts of each online frame separately: segmenter (``model.segment``), tracker
(``tracker.step``: matching + layers + heads + PGT bookkeeping) and output (masks at the frame's size packed with
the slots' results, the one host transfer, RLE of the held tracks: what ``OnlineTracker`` does per frame). First
``--warmup`` frames are not timed. Reference: DVIS says tracker + refiner are ~1.7 % of the segmenter's
FLOPs; on 2 cores the official tiny bundle's tracker takes ~96 ms/frame next to a ~2.5 s R50 segmenter.

    .venv/bin/python benchmarks/tracker_overhead.py --frames 30 --size 192x256
    .venv/bin/python benchmarks/tracker_overhead.py --config configs/ytvis19/dvis_online_R50.yaml --size 360x640
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from online_memory import CONFIG, PGT_OVERRIDES, synthetic_frames  # noqa: E402

from spvis.config import load_config  # noqa: E402
from spvis.data.rle import encode_column_major  # noqa: E402
from spvis.modeling.inference.emission import emit_frame  # noqa: E402
from spvis.modeling.meta_arch import SPVISModel  # noqa: E402


@torch.no_grad()
def time_parts(cfg, frames: list[np.ndarray], warmup: int) -> dict[str, float]:
    """Median ms/frame of segmenter, tracker and output over ``frames`` (after ``warmup`` frames)."""
    torch.manual_seed(0)
    model = SPVISModel.from_config(cfg).eval()
    times: dict[str, list[float]] = {"segmenter": [], "tracker": [], "output": []}
    state = None
    for index, frame in enumerate(frames):
        prepared = model.preprocessor(frame)
        t0 = time.perf_counter()
        seg = model.segment(prepared.images)
        t1 = time.perf_counter()
        out, state = model.tracker.step(seg["pred_embds"], seg["mask_features"], state)
        t2 = time.perf_counter()
        host = emit_frame(out["track_ids"][0], out["pred_logits"][0], out["pred_masks"][0], prepared, index).to_host()
        encode_column_major(host.column_major_masks(host.track_ids >= 0))
        t3 = time.perf_counter()
        if index >= warmup:
            for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
                times[key].append(1000 * value)
    return {key: float(np.median(values)) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--size", default="192x256", help="HxW of the synthetic frames")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.split("x"))
    frames = list(synthetic_frames(args.frames, height, width))
    base = ["MODEL.TRACKER.ENABLED=True", "MODEL.DEVICE=cpu", "MODEL.REFINER.ENABLED=False",
            f"INPUT.MIN_SIZE_TEST={min(height, width)}", f"INPUT.MAX_SIZE_TEST={max(height, width)}"]
    print(f"{Path(args.config).name}, {args.size}, {args.frames - args.warmup} timed frames, {args.threads} threads")
    print(f"{'tracker':>9} {'segmenter ms':>13} {'tracker ms':>11} {'tracker/seg':>12} {'output ms':>10}")
    for name, extra in (("DVIS", []), ("PGT", PGT_OVERRIDES)):
        t = time_parts(load_config(args.config, base + extra), frames, args.warmup)
        print(f"{name:>9} {t['segmenter']:>13.1f} {t['tracker']:>11.1f} {100 * t['tracker'] / t['segmenter']:>11.1f}% "
              f"{t['output']:>10.1f}")


if __name__ == "__main__":
    main()
