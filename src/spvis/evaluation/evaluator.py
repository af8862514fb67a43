"""``evaluate``: one call from GT + predictions to the ``metrics.json`` dict (AP/AR + tracking metrics).

Layout: top-level ``AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl`` (plus ``AP_light ..
AR_heavy`` when the GT carries OVIS occlusion labels) as fractions exactly as the official ``stats``
(-1 where it gives -1); ``per_category`` = {category id: {name, AP}} (AP -1 when undefined);
``tracking`` = {"class_avg", "pooled"[, "per_category"]}; ``info`` = what was evaluated.
"""

from __future__ import annotations

import os
from pathlib import Path

from spvis.evaluation.ground_truth import GroundTruth, load_ground_truth
from spvis.evaluation.results_io import ResultTrack, load_results
from spvis.evaluation.tracking import evaluate_tracking
from spvis.evaluation.vis_ap import evaluate_ap


def evaluate_loaded(gt: GroundTruth, results: list[ResultTrack], *, track_score_thr: float = 0.5,
                    per_category: bool = False) -> dict:
    """Metrics of already loaded and validated inputs (see module docstring for the layout)."""
    ap = evaluate_ap(gt, results)
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in gt.categories}
    metrics: dict = dict(ap.stats)
    metrics["per_category"] = {str(cid): {"name": names[cid], "AP": value} for cid, value in ap.per_category_ap.items()}
    metrics["tracking"] = evaluate_tracking(gt, results, score_threshold=track_score_thr, per_category=per_category)
    metrics["info"] = {"gt": gt.source, "num_videos": len(gt.videos), "num_categories": len(gt.categories),
                       "num_gt_tracks": sum(len(t) for t in gt.tracks_by_video.values()),
                       "num_results": len(results), "track_score_thr": track_score_thr,
                       "occlusion_buckets": gt.has_occlusion}
    return metrics


def evaluate(gt: str | os.PathLike | dict, results: str | os.PathLike | list, *, track_score_thr: float = 0.5,
             per_category: bool = False) -> dict:
    """Evaluate predictions (path to json / server zip, or a list) against a GT json (path or dict)."""
    ground_truth = load_ground_truth(gt if isinstance(gt, dict) else Path(gt))
    return evaluate_loaded(ground_truth, load_results(results, ground_truth), track_score_thr=track_score_thr,
                           per_category=per_category)
