"""Soft suppression of duplicate tracks in a video's results (TEST.TRACK_NMS_IOU).

A learned tracker can let two query slots follow one object for part of a video; both then reach the
results as confident tracks, and the tracking metrics (which count every entry over TEST.TRACK_SCORE_THR)
see a false track and identity switches. Linear soft-NMS (Bodla et al., ICCV 2017) over whole tracks:
entries are visited by descending score, and an entry whose spatio-temporal mask IoU with an earlier entry
of *another* track reaches the threshold has its score multiplied by (1 - IoU). Entries of the same track
with other classes are left alone (the official top-k keeps them for AP), nothing is removed, and masks
are unchanged; only the ranking and the scores move.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spvis.data.rle import rle_area
from spvis.evaluation.video_iou import video_ious


def soft_suppress_duplicates(entries: list[dict], track_ids: Sequence[int], iou_thr: float) -> list[dict]:
    """Entries (benchmark format) with duplicate tracks' scores decayed, sorted by descending score.

    ``track_ids[i]`` is the track of ``entries[i]``; ``iou_thr`` <= 0 returns the entries unchanged.
    """
    if iou_thr <= 0 or len(entries) < 2:
        return entries
    if len(track_ids) != len(entries):
        raise ValueError(f"{len(entries)} entries but {len(track_ids)} track ids")
    tracks = [e["segmentations"] for e in entries]
    areas = np.array([[rle_area(s) if s is not None else 0 for s in seg] for seg in tracks], dtype=np.int64)
    ious = video_ious(tracks, areas, tracks, areas)  # (E, E)
    scores = np.array([float(e["score"]) for e in entries])
    order = np.argsort(-scores, kind="stable")
    decayed = scores.copy()
    seen: list[int] = []
    for i in order.tolist():
        for j in seen:
            if track_ids[j] != track_ids[i] and ious[i, j] >= iou_thr:
                decayed[i] *= 1.0 - ious[i, j]
        seen.append(i)
    result = [dict(entry, score=float(decayed[i])) for i, entry in enumerate(entries)]
    final = np.argsort(-decayed, kind="stable")
    return [result[i] for i in final.tolist()]
