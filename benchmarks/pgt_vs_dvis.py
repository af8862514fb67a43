"""PGT vs the DVIS baseline tracker on a YTVIS-format dataset (the synthetic benchmark): AP, IDF1, IDSW, HOTA.

Every variant runs streaming online inference (spvis.engine.streaming) with the same weights and is scored
by spvis.evaluation.evaluate. Inference-time PGT parts (lifecycle, clip association) need no new weights;
the progressive reference has a learned gate, so the full PGT row needs weights trained with it
(``--weights-pgt``, e.g. configs/synth/tracker.yaml with MODEL.TRACKER.PGT.* on, same budget).

    spvis synth --out datasets/synth --videos 120 --frames 30 --size 192x256 --occlusion heavy --seed 0
    spvis train --config configs/synth/segmenter.yaml && spvis train --config configs/synth/tracker.yaml
    .venv/bin/python benchmarks/pgt_vs_dvis.py --gt datasets/synth/valid.json \\
        --weights output/synth/tracker/model_final.safetensors [--weights-pgt W] [--max-videos 8]
"""

from __future__ import annotations

import argparse
import time
from itertools import islice
from pathlib import Path

import torch

from spvis.checkpoints import load_weights
from spvis.data import load_video_dataset, open_frame_source
from spvis.engine.streaming import OnlineTracker
from spvis.evaluation import evaluate
from spvis.modeling.meta_arch import SPVISModel

INFERENCE_VARIANTS = {
    "DVIS": {},
    "+lifecycle": {"MEMORY": True, "LIFECYCLE": True},
    "+association": {"MEMORY": True, "CLIP_ASSOCIATION": True},
    "PGT (no gate)": {"MEMORY": True, "LIFECYCLE": True, "CLIP_ASSOCIATION": True},
}
FULL_PGT = {"MEMORY": True, "LIFECYCLE": True, "CLIP_ASSOCIATION": True, "PROGRESSIVE_REF": True}


def build(weights: str, switches: dict):
    """Model from our weights with the PGT switches applied (strict load: the gate needs PGT weights)."""
    state, cfg = load_weights(weights)
    cfg.MODEL.REFINER.ENABLED = False
    for key, value in switches.items():
        setattr(cfg.MODEL.TRACKER.PGT, key, value)
    model = SPVISModel.from_config(cfg)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("refiner.")}, strict=True)
    return model.eval(), cfg


def run_variant(weights: str, switches: dict, dataset, max_videos: int | None) -> tuple[dict, float]:
    """(metrics dict, ms/frame) of one variant over the dataset's first ``max_videos`` videos."""
    model, cfg = build(weights, switches)
    engine = OnlineTracker(model, cfg, score_thr=0.5)
    entries, frames, start = [], 0, time.perf_counter()
    for record in islice(dataset.videos, max_videos):
        source = open_frame_source(record, image_root=dataset.image_root or dataset.json_path.parent)
        for _ in engine.stream(iter(source), source=str(record.id)):
            frames += 1
        entries += engine.video_result(record.id, category_ids=dataset.contiguous_to_dataset_id).entries
    elapsed = time.perf_counter() - start
    video_ids = {r.id for r in islice(dataset.videos, max_videos)}
    gt = _subset(dataset.json_path, video_ids)
    return evaluate(gt, entries), 1000 * elapsed / max(frames, 1)


def _subset(json_path: Path, video_ids: set[int]) -> dict:
    import json

    data = json.loads(Path(json_path).read_text())
    data["videos"] = [v for v in data["videos"] if v["id"] in video_ids]
    data["annotations"] = [a for a in data["annotations"] if a["video_id"] in video_ids]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, help="YTVIS-format json with annotations")
    parser.add_argument("--image-root", help="frame root (default: the dataset's)")
    parser.add_argument("--weights", required=True, help="tracker-stage weights (baseline training)")
    parser.add_argument("--weights-pgt", help="weights trained with MODEL.TRACKER.PGT.PROGRESSIVE_REF on")
    parser.add_argument("--max-videos", type=int)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_video_dataset(args.gt, args.image_root)
    rows = [(name, args.weights, sw) for name, sw in INFERENCE_VARIANTS.items()]
    if args.weights_pgt:
        rows.append(("PGT (full)", args.weights_pgt, FULL_PGT))
    print(f"{Path(args.gt).name}: {min(len(dataset.videos), args.max_videos or 10**9)} videos, online mode")
    print(f"{'tracker':>14} {'AP':>6} {'AP50':>6} {'IDF1':>6} {'IDSW':>6} {'HOTA':>6} {'ms/frame':>9}")
    for name, weights, switches in rows:
        metrics, ms = run_variant(weights, switches, dataset, args.max_videos)
        track = metrics["tracking"]["pooled"]
        print(f"{name:>14} {100 * metrics['AP']:>6.1f} {100 * metrics['AP50']:>6.1f} {100 * track['IDF1']:>6.1f} "
              f"{track['IDSW']:>6d} {100 * track['HOTA']:>6.1f} {ms:>9.1f}")


if __name__ == "__main__":
    main()
