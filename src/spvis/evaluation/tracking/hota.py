"""HOTA family (HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA, OWTA) as TrackEval 1.3.0 computes it.

Per sequence (reference §2.2): a global alignment score between every GT and tracker id from
IoU-normalised co-occurrence, then per frame a Hungarian match on alignment x similarity, kept at
each of the 19 alphas where the similarity reaches alpha. Arrays have one entry per alpha; the
reported numbers are their means over alpha.
"""

from __future__ import annotations

import numpy as np

from spvis.evaluation.tracking.assignment import max_score_assignment
from spvis.evaluation.tracking.sequences import Sequence

ALPHAS = np.arange(0.05, 0.99, 0.05)  # 19 values, as TrackEval builds them
EPS = np.finfo("float").eps
ARRAY_FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA")
COUNT_FIELDS = ("HOTA_TP", "HOTA_FN", "HOTA_FP")
SCALAR_FIELDS = ("HOTA(0)", "LocA(0)", "HOTALocA(0)")


def _empty() -> dict:
    res = {f: np.zeros(len(ALPHAS)) for f in ARRAY_FIELDS + COUNT_FIELDS}
    res.update({f: 0.0 for f in SCALAR_FIELDS})
    return res


def _final_fields(res: dict) -> dict:
    """Fields that follow from the counts and AssA (shared by sequences, pooled classes)."""
    tp, fn, fp = res["HOTA_TP"], res["HOTA_FN"], res["HOTA_FP"]
    res["DetRe"] = tp / np.maximum(1, tp + fn)
    res["DetPr"] = tp / np.maximum(1, tp + fp)
    res["DetA"] = tp / np.maximum(1, tp + fn + fp)
    res["HOTA"] = np.sqrt(res["DetA"] * res["AssA"])
    res["OWTA"] = np.sqrt(res["DetRe"] * res["AssA"])
    res["HOTA(0)"] = res["HOTA"][0]
    res["LocA(0)"] = res["LocA"][0]
    res["HOTALocA(0)"] = res["HOTA(0)"] * res["LocA(0)"]
    return res


def hota_sequence(seq: Sequence) -> dict:
    """HOTA fields of one sequence."""
    res = _empty()
    num_alpha = len(ALPHAS)
    if seq.num_tracker_dets == 0 or seq.num_gt_dets == 0:
        if seq.num_tracker_dets == 0:
            res["HOTA_FN"] = seq.num_gt_dets * np.ones(num_alpha)
        else:
            res["HOTA_FP"] = seq.num_tracker_dets * np.ones(num_alpha)
        res["LocA"] = np.ones(num_alpha)
        res["LocA(0)"] = 1.0
        return res
    potential = np.zeros((seq.num_gt_ids, seq.num_tracker_ids))  # (G, P)
    for gt_ids, tr_ids, sim in zip(seq.gt_ids, seq.tracker_ids, seq.similarity):
        if sim.size == 0:
            continue
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim  # (g_t, p_t)
        sim_iou = np.divide(sim, denom, out=np.zeros_like(sim), where=denom > 0 + EPS)
        potential[gt_ids[:, None], tr_ids[None, :]] += sim_iou
    # frames each id is present in (ids are unique within a frame)
    gt_count = np.bincount(np.concatenate(seq.gt_ids), minlength=seq.num_gt_ids).astype(float)[:, None]  # (G, 1)
    tracker_count = np.bincount(np.concatenate(seq.tracker_ids), minlength=seq.num_tracker_ids
                                ).astype(float)[None, :]  # (1, P)
    alignment = potential / (gt_count + tracker_count - potential)  # (G, P)
    # per frame only the Hungarian match; the 19 alpha thresholds are applied to all matched pairs at once
    pair_sim, pair_gt, pair_tr = [], [], []
    for gt_ids, tr_ids, sim in zip(seq.gt_ids, seq.tracker_ids, seq.similarity):
        if len(gt_ids) == 0 or len(tr_ids) == 0:
            continue
        rows, cols = max_score_assignment(alignment[gt_ids[:, None], tr_ids[None, :]] * sim)
        pair_sim.append(sim[rows, cols])
        pair_gt.append(gt_ids[rows])
        pair_tr.append(tr_ids[cols])
    matched_sim = np.concatenate(pair_sim) if pair_sim else np.zeros(0)  # (M,)
    keep = matched_sim[None, :] >= ALPHAS[:, None] - EPS  # (A, M)
    res["HOTA_TP"] = keep.sum(axis=1).astype(float)
    res["HOTA_FN"] = seq.num_gt_dets - res["HOTA_TP"]
    res["HOTA_FP"] = seq.num_tracker_dets - res["HOTA_TP"]
    res["LocA"] = np.where(keep, matched_sim[None, :], 0.0).sum(axis=1)
    matches = np.zeros((num_alpha, seq.num_gt_ids, seq.num_tracker_ids))  # (A, G, P)
    if len(matched_sim):
        alpha_idx, pair_idx = np.nonzero(keep)
        gts, trs = np.concatenate(pair_gt), np.concatenate(pair_tr)
        np.add.at(matches, (alpha_idx, gts[pair_idx], trs[pair_idx]), 1)
    tp = np.maximum(1, res["HOTA_TP"])
    m = matches  # (A, G, P)
    res["AssA"] = (m * (m / np.maximum(1, gt_count + tracker_count - m))).sum(axis=(1, 2)) / tp
    res["AssRe"] = (m * (m / np.maximum(1, gt_count))).sum(axis=(1, 2)) / tp
    res["AssPr"] = (m * (m / np.maximum(1, tracker_count))).sum(axis=(1, 2)) / tp
    res["LocA"] = np.maximum(1e-10, res["LocA"]) / np.maximum(1e-10, res["HOTA_TP"])
    return _final_fields(res)


def hota_combine_sum(parts: list[dict]) -> dict:
    """Sequences of a class, or classes pooled: counts summed, association TP-weighted."""
    res = {f: sum(p[f] for p in parts) for f in COUNT_FIELDS}
    for f in ("AssRe", "AssPr", "AssA"):
        res[f] = sum(p[f] * p["HOTA_TP"] for p in parts) / np.maximum(1.0, res["HOTA_TP"])
    loc = sum(p["LocA"] * p["HOTA_TP"] for p in parts)
    res["LocA"] = np.maximum(1e-10, loc) / np.maximum(1e-10, res["HOTA_TP"])
    return _final_fields(res)


def hota_class_average(parts: list[dict]) -> dict:
    """Mean of per-class values over all classes (empty classes included, as TrackEval's default)."""
    res = {f: sum(p[f] for p in parts) for f in COUNT_FIELDS}
    for f in SCALAR_FIELDS + ARRAY_FIELDS:
        res[f] = np.mean([p[f] for p in parts], axis=0)
    return res


def hota_summary(res: dict) -> dict[str, float]:
    """Reported values: array fields averaged over alpha, plus the alpha-0.05 scalars."""
    out = {f: float(np.mean(res[f])) for f in ARRAY_FIELDS}
    out.update({f: float(res[f]) for f in SCALAR_FIELDS})
    return out
