"""TIDE-style error assignment on video IoU: every evaluated prediction is a true positive or one error type.

TIDE (Bolya et al. 2020) adapted to video as TIVE (Jia et al. 2022) does: IoU is the official spatio-temporal
video IoU, the background threshold t_b = 0.1 and the foreground threshold t_f = 0.5 (the counts ``spvis
analyze`` prints; the dAP over 0.5:0.95 repeats the assignment at each official IoU threshold as t_f, as TIDE
does for a threshold range). Predictions are matched per (video, category) exactly as the official AP matches
them at t_f (score order, top 100, crowd GT ignored); a prediction matched to a crowd GT is ignored. Each other
prediction takes the first type that applies (TIDE's precedence), against the video's non-crowd GT tracks:

1. localisation: its best video IoU with a GT of its class lies in [t_b, t_f). TIVE splits this error into a
   spatial and a temporal one; here the split is by identity. The prediction's frames on that GT are the frames
   where its mask overlaps that GT more than any other GT, with mask IoU >= t_b. It is an ``association`` error
   when its masks are right where it follows the object (IoU over those frames >= t_f) and the object's identity
   is what went wrong: the prediction also follows another GT (one predicted track spanning several GT tracks),
   or another prediction of its class follows this GT at other frames (a GT track split across predictions).
   Otherwise it is a ``mask`` (mask quality) error;
2. ``classification``: video IoU >= t_f with a GT of another class;
3. ``duplicate``: video IoU >= t_f with a GT of its class that a higher-ranked prediction matched;
4. ``background``: video IoU < t_b with every GT;
5. ``both``: anything else (wrong class and video IoU in [t_b, t_f) with it: TIDE's "Both").

A non-crowd GT track that is unmatched at t_f and that no classification, mask or association error points at
is ``missed``. Of the errors pointing at one unmatched GT, the highest-scoring one is its fixer (TIDE: a GT
can be fixed once; the others are suppressed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spvis.evaluation.ground_truth import GroundTruth, GtTrack, GtVideo
from spvis.evaluation.results_io import ResultTrack
from spvis.evaluation.vis_ap import IOU_THRESHOLDS, MAX_DETS, greedy_match
from spvis.report.analysis import MATCH_IOU, video_iou_matrix
from spvis.report.coverage import frame_ious

FOREGROUND_IOU = MATCH_IOU  # t_f of the reported counts
BACKGROUND_IOU = 0.1  # t_b
ERROR_TYPES = ("classification", "duplicate", "mask", "association", "both", "background", "missed")
FIXABLE = ("classification", "mask", "association")  # errors that can turn into a true positive of one GT
NO_GT = -1  # identity of a predicted frame that overlaps no GT track by t_b (or has no mask)


@dataclass
class VideoOverlaps:
    """One video's GT tracks and predictions (file order) with their video and per-frame mask IoUs."""

    video: GtVideo
    gts: list[GtTrack]
    results: list[ResultTrack]
    video_iou: np.ndarray  # (D, G) float64
    frame_iou: np.ndarray  # (T, G, D) float64, 0 where either side has no mask
    # (D, T) int64: the GT column each predicted frame overlaps most, if that mask IoU reaches t_b (a mask
    # overlapping a GT less does not show it), else NO_GT; crowd GT included, any category
    identity: np.ndarray = field(init=False)
    result_col: dict[int, int] = field(init=False)  # result index -> column
    gt_col: dict[int, int] = field(init=False)  # GT id -> column

    def __post_init__(self) -> None:
        self.identity = np.full((len(self.results), self.video.length), NO_GT, dtype=np.int64)
        if self.gts and self.results:
            best = np.argmax(self.frame_iou, axis=1).T  # (D, T); ties -> the earlier GT in file order
            self.identity = np.where(self.frame_iou.max(axis=1).T >= BACKGROUND_IOU, best, NO_GT)
        self.result_col = {r.index: d for d, r in enumerate(self.results)}
        self.gt_col = {g.id: j for j, g in enumerate(self.gts)}

    def frames_on(self, d: int, j: int) -> np.ndarray:
        """Frames (int64 indices) where prediction column ``d`` overlaps GT column ``j`` more than any other GT."""
        return np.flatnonzero(self.identity[d] == j)

    def frame_areas(self, d: int, j: int, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Intersection and union areas (int64, one per frame) of prediction ``d`` and GT ``j`` on ``frames``.

        Recovered from the per-frame IoU and the two areas, I = IoU (a + b) / (1 + IoU), exactly as the video IoU
        code recovers them (integer areas; the float error is far below one pixel)."""
        iou = self.frame_iou[frames, j, d]
        sums = self.results[d].frame_areas[frames] + self.gts[j].frame_areas[frames]
        inter = np.rint(iou * sums / (1.0 + iou)).astype(np.int64)
        return inter, sums - inter

    def iou_on_frames(self, d: int, j: int) -> float:
        """IoU of prediction ``d`` and GT ``j`` summed over the prediction's frames on that GT (0 without any)."""
        inter, union = self.frame_areas(d, j, self.frames_on(d, j))
        return float(inter.sum() / union.sum()) if union.sum() > 0 else 0.0

    def identity_error(self, d: int, j: int) -> bool:
        """Prediction ``d`` also follows a GT other than ``j``, or another prediction of its class follows GT ``j``
        at frames where ``d`` does not."""
        on = self.identity[d] == j
        if np.any((self.identity[d] != NO_GT) & ~on):
            return True
        same = np.array([r.category_id == self.results[d].category_id for r in self.results], dtype=bool)
        same[d] = False
        return bool(np.any((self.identity[same] == j) & ~on))


def compute_overlaps(gt: GroundTruth, results: list[ResultTrack]) -> dict[int, VideoOverlaps]:
    """Overlaps of every GT video (by id): its GT tracks and predictions in file order."""
    by_video: dict[int, list[ResultTrack]] = {}
    for r in results:
        by_video.setdefault(r.video_id, []).append(r)
    out = {}
    for video in gt.videos:
        gts, preds = gt.tracks_by_video.get(video.id, []), by_video.get(video.id, [])
        out[video.id] = VideoOverlaps(video, list(gts), list(preds), video_iou_matrix(preds, gts),
                                      frame_ious(gts, preds, video.length))
    return out


@dataclass(frozen=True)
class PredictionError:
    """Why one prediction is not a true positive at t_f."""

    result_index: int
    video_id: int
    kind: str  # one of ERROR_TYPES except "missed"
    gt_id: int | None  # the GT track the error points at (None for background)


@dataclass
class ErrorAssignment:
    """Per-prediction outcome at one t_f, missed GT tracks and fixers, with the overlaps they came from."""

    foreground_iou: float
    overlaps: dict[int, VideoOverlaps]  # by video id
    matched: dict[int, int]  # result index -> GT id, true positives at t_f
    errors: dict[int, PredictionError]  # by result index
    missed: list[GtTrack]
    fixer: dict[int, int]  # unmatched GT id -> result index of the highest-scoring error pointing at it
    gt_by_id: dict[int, GtTrack]

    def of_kind(self, kind: str) -> list[PredictionError]:
        """The errors of one type, in result order."""
        return [e for _, e in sorted(self.errors.items()) if e.kind == kind]

    def count(self, kind: str) -> int:
        """Number of errors of one type (GT tracks for ``missed``)."""
        return len(self.missed) if kind == "missed" else sum(e.kind == kind for e in self.errors.values())


def _match_video(ov: VideoOverlaps, row: int, matched: dict[int, int]) -> set[int]:
    """Official matching at IoU threshold ``IOU_THRESHOLDS[row]`` per category of the video; fills ``matched``;
    returns the result indices it evaluated and left unmatched (not ignored, within the top 100 of their cell)."""
    unmatched: set[int] = set()
    crowd = np.array([g.iscrowd for g in ov.gts], dtype=bool)
    for cid in sorted({r.category_id for r in ov.results}):
        rows = [d for d, r in enumerate(ov.results) if r.category_id == cid]
        rows = [rows[i] for i in np.argsort([-ov.results[d].score for d in rows], kind="mergesort")[:MAX_DETS[-1]]]
        cols = np.array([j for j, g in enumerate(ov.gts) if g.category_id == cid], dtype=np.int64)
        order = cols[np.argsort(crowd[cols], kind="mergesort")]  # non-crowd GT first, as the official matching
        got, got_ignored = greedy_match(ov.video_iou[np.ix_(rows, order)], crowd[order], crowd[order])
        for i, d in enumerate(rows):
            k = int(got[row, i])
            if k < 0:
                unmatched.add(ov.results[d].index)
            elif not got_ignored[row, i]:
                matched[ov.results[d].index] = ov.gts[order[k]].id
    return unmatched


def _classify(ov: VideoOverlaps, d: int, matched_cols: np.ndarray, t_f: float) -> tuple[str, int | None]:
    """Error type of unmatched prediction column ``d`` and the GT column it points at (TIDE's precedence)."""
    regular = np.array([not g.iscrowd for g in ov.gts], dtype=bool)
    if not regular.any():
        return "background", None
    row = np.where(regular, ov.video_iou[d], -1.0)  # (G,) crowd GT never count
    same = np.array([g.category_id == ov.results[d].category_id for g in ov.gts], dtype=bool) & regular
    if same.any():
        j = int(np.argmax(np.where(same, row, -1.0)))
        if BACKGROUND_IOU <= row[j] < t_f:
            temporal = ov.iou_on_frames(d, j) >= t_f and ov.identity_error(d, j)
            return ("association" if temporal else "mask"), j
    other = regular & ~same
    if other.any():
        j = int(np.argmax(np.where(other, row, -1.0)))
        if row[j] >= t_f:
            return "classification", j
    taken = same & matched_cols
    if taken.any():
        j = int(np.argmax(np.where(taken, row, -1.0)))
        if row[j] >= t_f:
            return "duplicate", j
    j = int(np.argmax(row))
    return ("background", None) if row[j] < BACKGROUND_IOU else ("both", j)


def assign_errors(gt: GroundTruth, results: list[ResultTrack], *, foreground_iou: float = FOREGROUND_IOU,
                  overlaps: dict[int, VideoOverlaps] | None = None) -> ErrorAssignment:
    """TIDE's assignment (module docstring) of validated ``results`` against ``gt`` at t_f = ``foreground_iou``
    (one of the official IoU thresholds); ``overlaps`` from ``compute_overlaps`` may be passed to reuse them."""
    hits = np.flatnonzero(np.isclose(IOU_THRESHOLDS, foreground_iou))
    if len(hits) != 1:
        raise ValueError(f"foreground_iou must be one of the official IoU thresholds, got {foreground_iou}")
    row, t_f = int(hits[0]), float(IOU_THRESHOLDS[hits[0]])
    overlaps = compute_overlaps(gt, results) if overlaps is None else overlaps
    matched: dict[int, int] = {}
    errors: dict[int, PredictionError] = {}
    fixer: dict[int, int] = {}
    for video in gt.videos:
        ov = overlaps[video.id]
        unmatched = _match_video(ov, row, matched)
        matched_cols = np.zeros(len(ov.gts), dtype=bool)
        for gid in (matched[r.index] for r in ov.results if r.index in matched):
            matched_cols[ov.gt_col[gid]] = True
        best_score: dict[int, float] = {}
        for d in np.argsort([-r.score for r in ov.results], kind="mergesort").tolist():
            r = ov.results[d]
            if r.index not in unmatched:
                continue
            kind, j = _classify(ov, d, matched_cols, t_f)
            gid = None if j is None else ov.gts[j].id
            errors[r.index] = PredictionError(r.index, video.id, kind, gid)
            if kind in FIXABLE and not matched_cols[j] and r.score > best_score.get(gid, -np.inf):
                best_score[gid], fixer[gid] = r.score, r.index  # strictly greater: the first of equal scores wins
    found = set(matched.values())
    missed = [g for video in gt.videos for g in gt.tracks_by_video.get(video.id, [])
              if not g.iscrowd and g.id not in fixer and g.id not in found]
    gt_by_id = {g.id: g for tracks in gt.tracks_by_video.values() for g in tracks}
    return ErrorAssignment(t_f, overlaps, matched, errors, missed, fixer, gt_by_id)
