"""CLEAR MOT on masks (MOTA, MOTP, MODA, IDSW, Frag, MT/PT/ML, ...) as TrackEval 1.3.0 computes it.

Per frame a Hungarian match on 1000 * [tracker id equals the one matched to this GT in the previous
frame] + IoU, pairs below IoU 0.5 zeroed (reference §2.3). An ID switch is a matched GT whose tracker
id differs from the last one it had (any earlier frame); Frag counts re-starts of tracking after the
first; MT / PT / ML split GT ids by tracked ratio > 0.8 / >= 0.2 / rest.
"""

from __future__ import annotations

import numpy as np

from spvis.evaluation.tracking.assignment import max_score_assignment
from spvis.evaluation.tracking.sequences import Sequence

THRESHOLD = 0.5
EPS = np.finfo("float").eps
COUNT_FIELDS = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames")
RATE_FIELDS = ("MOTA", "MOTP", "MODA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "sMOTA", "CLR_F1",
               "FP_per_frame", "MOTAL", "MOTP_sum")
SUMMED_FIELDS = COUNT_FIELDS + ("MOTP_sum",)


def _final_fields(res: dict) -> dict:
    num_gt_ids = res["MT"] + res["ML"] + res["PT"]
    tp, fn, fp, idsw = res["CLR_TP"], res["CLR_FN"], res["CLR_FP"], res["IDSW"]
    res["MTR"] = res["MT"] / np.maximum(1.0, num_gt_ids)
    res["MLR"] = res["ML"] / np.maximum(1.0, num_gt_ids)
    res["PTR"] = res["PT"] / np.maximum(1.0, num_gt_ids)
    res["CLR_Re"] = tp / np.maximum(1.0, tp + fn)
    res["CLR_Pr"] = tp / np.maximum(1.0, tp + fp)
    res["MODA"] = (tp - fp) / np.maximum(1.0, tp + fn)
    res["MOTA"] = (tp - fp - idsw) / np.maximum(1.0, tp + fn)
    res["MOTP"] = res["MOTP_sum"] / np.maximum(1.0, tp)
    res["sMOTA"] = (res["MOTP_sum"] - fp - idsw) / np.maximum(1.0, tp + fn)
    res["CLR_F1"] = tp / np.maximum(1.0, tp + 0.5 * fn + 0.5 * fp)
    res["FP_per_frame"] = fp / np.maximum(1.0, res["CLR_Frames"])
    safe_log_idsw = np.log10(idsw) if idsw > 0 else idsw
    res["MOTAL"] = (tp - fp - safe_log_idsw) / np.maximum(1.0, tp + fn)
    return res


def clear_sequence(seq: Sequence) -> dict:
    """CLEAR fields of one sequence."""
    res = {f: 0 for f in COUNT_FIELDS}
    res.update({f: 0 for f in RATE_FIELDS})
    if seq.num_tracker_dets == 0:
        res.update(CLR_FN=seq.num_gt_dets, ML=seq.num_gt_ids, MLR=1.0)
        return res
    if seq.num_gt_dets == 0:
        res.update(CLR_FP=seq.num_tracker_dets, MLR=1.0)
        return res
    n = seq.num_gt_ids
    gt_frames = np.zeros(n)  # frames where each GT id is present
    gt_tracked = np.zeros(n)  # frames where it is matched
    gt_starts = np.zeros(n)  # times tracking (re)starts
    last_tracker = np.full(n, np.nan)  # tracker id at the GT's last match (for IDSW)
    prev_frame_tracker = np.full(n, np.nan)  # tracker id matched in the previous frame only
    motp_sum = 0.0
    for gt_ids, tr_ids, sim in zip(seq.gt_ids, seq.tracker_ids, seq.similarity):
        if len(gt_ids) == 0:
            res["CLR_FP"] += len(tr_ids)
            continue
        if len(tr_ids) == 0:
            res["CLR_FN"] += len(gt_ids)
            gt_frames[gt_ids] += 1
            continue
        continues = tr_ids[None, :] == prev_frame_tracker[gt_ids[:, None]]  # (g_t, p_t)
        score = 1000 * continues + sim
        score[sim < THRESHOLD - EPS] = 0
        rows, cols = max_score_assignment(score)
        kept = score[rows, cols] > 0 + EPS
        rows, cols = rows[kept], cols[kept]
        matched_gt, matched_tr = gt_ids[rows], tr_ids[cols]
        previous = last_tracker[matched_gt]
        res["IDSW"] += int(np.sum(~np.isnan(previous) & (matched_tr != previous)))
        gt_frames[gt_ids] += 1
        gt_tracked[matched_gt] += 1
        was_untracked = np.isnan(prev_frame_tracker)
        last_tracker[matched_gt] = matched_tr
        prev_frame_tracker[:] = np.nan
        prev_frame_tracker[matched_gt] = matched_tr
        gt_starts += was_untracked & ~np.isnan(prev_frame_tracker)
        res["CLR_TP"] += len(matched_gt)
        res["CLR_FN"] += len(gt_ids) - len(matched_gt)
        res["CLR_FP"] += len(tr_ids) - len(matched_gt)
        if len(matched_gt):
            motp_sum += sum(sim[rows, cols])
    ratio = gt_tracked[gt_frames > 0] / gt_frames[gt_frames > 0]
    res["MT"] = int(np.sum(ratio > 0.8))
    res["PT"] = int(np.sum(ratio >= 0.2)) - res["MT"]
    res["ML"] = n - res["MT"] - res["PT"]
    res["Frag"] = int(np.sum(gt_starts[gt_starts > 0] - 1))
    res["MOTP_sum"] = motp_sum
    res["CLR_Frames"] = seq.num_timesteps
    return _final_fields(res)


def clear_combine_sum(parts: list[dict]) -> dict:
    """Sequences of a class, or classes pooled: counts (and the IoU sum) summed."""
    res = {f: sum(p[f] for p in parts) for f in SUMMED_FIELDS}
    return _final_fields(res)


def clear_class_average(parts: list[dict]) -> dict:
    """Counts summed over classes, rates averaged over all classes."""
    res = {f: sum(p[f] for p in parts) for f in COUNT_FIELDS}
    for f in RATE_FIELDS:
        res[f] = np.mean([p[f] for p in parts], axis=0)
    return res


def clear_summary(res: dict) -> dict[str, float]:
    keys = ("MOTA", "MOTP", "MODA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "sMOTA",
            "CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag")
    return {k: (int(res[k]) if k in COUNT_FIELDS else float(res[k])) for k in keys}
