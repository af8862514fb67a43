"""Precision-recall curves read from the AP code's own accumulation (``APResult.precision``), not recomputed.

The arrays are the official ones: precision at the 101 recall thresholds, after the right-to-left envelope,
0 beyond the highest recall reached, -1 for a category without non-ignored GT. Curves are taken at area
"all" and maxDet 100, the cell AP50 / AP75 and the per-category AP read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spvis.evaluation.vis_ap import IOU_THRESHOLDS, MAX_DETS, RECALL_THRESHOLDS, APResult

CURVE_IOUS = (0.5, 0.75)


@dataclass(frozen=True)
class PRCurve:
    """Precision at the official recall thresholds for one IoU threshold."""

    iou: float
    recall: np.ndarray  # (R,) = RECALL_THRESHOLDS
    precision: np.ndarray  # (R,) float64 in [0, 1]
    ap: float  # mean of ``precision``: the AP at this IoU


def _cell(ap: APResult, iou: float) -> np.ndarray:
    """precision (R, K) at one IoU threshold, area "all", maxDet 100 (-1 columns = undefined categories)."""
    t = int(np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou))[0])
    b = [bucket.name for bucket in ap.buckets].index("all")
    return ap.precision[t, :, :, b, MAX_DETS.index(100)]


def category_curves(ap: APResult, iou: float) -> dict[int, PRCurve | None]:
    """Curve per category id at ``iou``; None where the category has no non-ignored GT (AP -1)."""
    cell = _cell(ap, iou)  # (R, K)
    out: dict[int, PRCurve | None] = {}
    for k, cid in enumerate(ap.category_ids):
        column = cell[:, k]
        out[cid] = None if np.all(column == -1) else PRCurve(iou, RECALL_THRESHOLDS, column.copy(),
                                                              float(np.mean(column)))
    return out


def mean_curve(ap: APResult, iou: float) -> PRCurve | None:
    """All-categories curve: per recall threshold the mean over defined categories (its mean is AP at ``iou``)."""
    cell = _cell(ap, iou)  # (R, K)
    defined = ~np.all(cell == -1, axis=0)  # (K,)
    if not defined.any():
        return None
    precision = cell[:, defined].mean(axis=1)
    return PRCurve(iou, RECALL_THRESHOLDS, precision, float(np.mean(precision)))
