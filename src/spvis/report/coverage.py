"""Per-frame coverage of GT tracks by predicted tracks: which prediction covers a GT at each frame, ID switches.

A prediction covers a GT track at frame t when both have a mask there and their mask IoU reaches the
CLEAR / Identity threshold (0.5, with CLEAR's epsilon). Callers pass GT and predictions of one category
(the tracking metrics are per category). Per frame a GT keeps the prediction that covered it last when that
one still covers it (CLEAR's continuity rule), otherwise it takes the highest IoU (ties: the earlier
prediction). Two disjoint GT masks cannot share a prediction at IoU > 0.5, so on ordinary data this is
CLEAR's per-frame matching and the switches counted here are CLEAR's IDSW.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spvis.data.rle import rle_ious
from spvis.evaluation.ground_truth import GtTrack
from spvis.evaluation.results_io import ResultTrack
from spvis.evaluation.tracking.clear import EPS, THRESHOLD

COVER_ABSENT = -2  # the GT track has no mask at this frame
COVER_MISSED = -1  # the GT track is present but no prediction covers it


@dataclass(frozen=True)
class Timeline:
    """Coverage of one GT track over the frames of its video."""

    gt_id: int
    video_id: int
    category_id: int
    covering: np.ndarray  # (T,) int64: result index (file position) covering the GT, or COVER_ABSENT / COVER_MISSED
    cover_iou: np.ndarray  # (T,) float64: mask IoU of the covering prediction (0 where none)

    @property
    def present_frames(self) -> int:
        return int(np.sum(self.covering != COVER_ABSENT))

    @property
    def covered_frames(self) -> int:
        return int(np.sum(self.covering >= 0))

    @property
    def missed(self) -> bool:
        """Present in some frame and covered in none (a GT track the tracker never found)."""
        return self.present_frames > 0 and self.covered_frames == 0

    @property
    def switch_frames(self) -> list[int]:
        """Frames where a prediction other than the last one that covered the GT covers it (CLEAR's IDSW rule)."""
        out, last = [], None
        for t, who in enumerate(self.covering.tolist()):
            if who < 0:
                continue
            if last is not None and who != last:
                out.append(t)
            last = who
        return out


def frame_ious(gts: list[GtTrack], preds: list[ResultTrack], num_frames: int) -> np.ndarray:
    """Per-frame mask IoU (T, G, P) float64 of GT tracks vs predictions; 0 where either side has no mask.

    A GT is present where its entry is not None, a prediction where its mask is non-empty (as the tracking
    metrics count detections); IoUs come from pycocotools like the tracking code's similarity.
    """
    out = np.zeros((num_frames, len(gts), len(preds)))
    for t in range(num_frames):
        g_idx = [j for j, g in enumerate(gts) if g.rles[t] is not None]
        p_idx = [i for i, p in enumerate(preds) if p.frame_areas[t] > 0]
        if g_idx and p_idx:
            out[t][np.ix_(g_idx, p_idx)] = rle_ious([gts[j].rles[t] for j in g_idx], [preds[i].rles[t] for i in p_idx])
    return out


def covers(ious: np.ndarray) -> np.ndarray:
    """Bool array of the same shape: IoU reaches the CLEAR threshold (with its epsilon)."""
    return ious >= THRESHOLD - EPS


def coverage_timelines(gts: list[GtTrack], preds: list[ResultTrack], ious: np.ndarray) -> list[Timeline]:
    """Timelines of ``gts`` (one video, one category) against ``preds`` of that category; ious (T, G, P)."""
    num_frames = ious.shape[0]
    ok = covers(ious)  # (T, G, P)
    out = []
    for j, g in enumerate(gts):
        covering = np.full(num_frames, COVER_ABSENT, dtype=np.int64)
        cover_iou = np.zeros(num_frames)
        last: int | None = None  # column of the prediction that covered this GT last
        for t in range(num_frames):
            if g.rles[t] is None:
                continue
            candidates = np.flatnonzero(ok[t, j])
            if len(candidates) == 0:
                covering[t] = COVER_MISSED
                continue
            if last is not None and ok[t, j, last]:
                col = last
            else:
                col = int(candidates[np.argmax(ious[t, j, candidates])])  # argmax: ties -> earlier prediction
            covering[t], cover_iou[t], last = preds[col].index, ious[t, j, col], col
        out.append(Timeline(g.id, g.video_id, g.category_id, covering, cover_iou))
    return out
