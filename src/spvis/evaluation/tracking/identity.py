"""Identity metrics (IDF1, IDP, IDR) as TrackEval 1.3.0 computes them.

One global one-to-one assignment of GT ids to tracker ids maximising the number of frames where the
pair overlaps with IoU >= 0.5 (reference §2.4). TrackEval solves it as a square min-cost problem
(IDFN + IDFP with dummy rows/columns); its optimum is the assignment of maximal IDTP, which is what
is solved here directly on the rectangular count matrix — same integers, a smaller problem.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from spvis.evaluation.tracking.sequences import Sequence

THRESHOLD = 0.5
COUNT_FIELDS = ("IDTP", "IDFN", "IDFP")
RATE_FIELDS = ("IDF1", "IDR", "IDP")


def _final_fields(res: dict) -> dict:
    tp, fn, fp = res["IDTP"], res["IDFN"], res["IDFP"]
    res["IDR"] = tp / np.maximum(1.0, tp + fn)
    res["IDP"] = tp / np.maximum(1.0, tp + fp)
    res["IDF1"] = tp / np.maximum(1.0, tp + 0.5 * fp + 0.5 * fn)
    return res


def identity_sequence(seq: Sequence) -> dict:
    """Identity fields of one sequence."""
    res = {f: 0 for f in COUNT_FIELDS + RATE_FIELDS}
    if seq.num_tracker_dets == 0:
        res["IDFN"] = seq.num_gt_dets
        return res
    if seq.num_gt_dets == 0:
        res["IDFP"] = seq.num_tracker_dets
        return res
    overlaps = np.zeros((seq.num_gt_ids, seq.num_tracker_ids))  # (G, P) frames with IoU >= 0.5
    for gt_ids, tr_ids, sim in zip(seq.gt_ids, seq.tracker_ids, seq.similarity):
        g, p = np.nonzero(sim >= THRESHOLD)
        overlaps[gt_ids[g], tr_ids[p]] += 1
    rows, cols = linear_sum_assignment(-overlaps)
    idtp = int(overlaps[rows, cols].sum())
    res["IDTP"] = idtp
    res["IDFN"] = seq.num_gt_dets - idtp
    res["IDFP"] = seq.num_tracker_dets - idtp
    return _final_fields(res)


def identity_combine_sum(parts: list[dict]) -> dict:
    res = {f: sum(p[f] for p in parts) for f in COUNT_FIELDS}
    return _final_fields(res)


def identity_class_average(parts: list[dict]) -> dict:
    res = {f: sum(p[f] for p in parts) for f in COUNT_FIELDS}
    for f in RATE_FIELDS:
        res[f] = np.mean([p[f] for p in parts], axis=0)
    return res


def identity_summary(res: dict) -> dict[str, float]:
    return {k: (int(res[k]) if k in COUNT_FIELDS else float(res[k])) for k in ("IDF1", "IDR", "IDP") + COUNT_FIELDS}
