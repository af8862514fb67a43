"""Error analysis for the report: per-video coverage timelines, missed GT tracks, false tracks, per-video metrics.

The tracking view (timelines, missed and false tracks, per-video HOTA / IDF1 / IDSW) uses the predictions the
tracking metrics count: score >= ``track_score_thr``, non-empty masks, same category. Per-video tracking
numbers come from the tracking code itself (one ``Sequence`` per category of the video, pooled over the
video's categories), so they sum to the pooled totals of ``evaluate``. The AP view (best video IoU of each
GT track) uses every prediction of the GT's category, whatever its score, as AP does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spvis.evaluation.ground_truth import GroundTruth, GtTrack, GtVideo
from spvis.evaluation.results_io import ResultTrack
from spvis.evaluation.tracking.clear import clear_combine_sum, clear_sequence, clear_summary
from spvis.evaluation.tracking.hota import hota_combine_sum, hota_sequence, hota_summary
from spvis.evaluation.tracking.identity import identity_combine_sum, identity_sequence, identity_summary
from spvis.evaluation.tracking.sequences import build_sequence
from spvis.evaluation.video_iou import video_ious
from spvis.report.coverage import Timeline, coverage_timelines, covers, frame_ious

MATCH_IOU = 0.5  # video IoU at which a track counts as found (AP50's threshold)

# why a GT track was never covered / why a prediction covers nothing (first rule that applies wins)
MISSED_REASONS = ("below score threshold", "wrong class", "poor mask", "no prediction")
FALSE_REASONS = ("duplicate", "wrong class", "poor mask", "background")


@dataclass(frozen=True)
class MissedTrack:
    """A GT track no counted prediction covers in any frame, with the closest predictions."""

    gt_id: int
    video_id: int
    category_id: int
    frames: int  # frames where the GT is present
    best_iou: float  # best video IoU with a prediction of its category, any score
    best_low_score_iou: float  # same, predictions below the score threshold only
    best_other_iou: float  # best video IoU with a prediction of another category (score >= threshold)
    best_other_category: int | None
    reason: str  # one of MISSED_REASONS


@dataclass(frozen=True)
class FalseTrack:
    """A counted prediction that covers no GT track in any frame, with its closest GT track."""

    result_index: int  # position in the results file
    video_id: int
    category_id: int
    score: float
    frames: int  # frames with a non-empty mask
    best_iou: float  # best video IoU with any GT track of the video (any category)
    best_gt_id: int | None
    best_gt_category: int | None
    reason: str  # one of FALSE_REASONS


@dataclass
class VideoAnalysis:
    """Everything the report shows about one video."""

    video: GtVideo
    gt_tracks: list[GtTrack]  # file order
    kept: list[ResultTrack]  # predictions the tracking metrics count (score >= threshold, some mask), file order
    num_results: int  # all predictions of the video
    timelines: list[Timeline]  # one per GT track, in gt_tracks order
    best_iou: dict[int, float]  # GT id -> best video IoU with a prediction of its category (any score)
    missed: list[MissedTrack]
    false: list[FalseTrack]
    tracking: dict[str, float]  # HOTA / CLEAR / Identity summary pooled over the video's categories

    @property
    def mean_best_iou(self) -> float:
        """Mean best video IoU over the non-crowd GT tracks (NaN without any)."""
        values = [self.best_iou[g.id] for g in self.gt_tracks if not g.iscrowd]
        return float(np.mean(values)) if values else math.nan

    @property
    def recall50(self) -> float:
        """Fraction of non-crowd GT tracks with a prediction of their category at video IoU >= 0.5 (NaN without any)."""
        values = [self.best_iou[g.id] >= MATCH_IOU for g in self.gt_tracks if not g.iscrowd]
        return float(np.mean(values)) if values else math.nan

    @property
    def has_errors(self) -> bool:
        """Any ID switch, uncovered GT frame or false track."""
        return bool(self.false) or any(tl.switch_frames or tl.covered_frames < tl.present_frames
                                       for tl in self.timelines)

    def sort_key(self) -> tuple:
        """Worst first: low mean best IoU (a video without GT counts as perfect unless it has false tracks),
        then low IDF1, then many ID switches."""
        quality = self.mean_best_iou
        if math.isnan(quality):
            quality = 0.0 if self.false else 1.0
        return (quality, self.tracking["IDF1"], -self.tracking["IDSW"], self.video.id)


@dataclass
class ReportAnalysis:
    """Per-video analyses in GT file order, and the threshold they used."""

    videos: list[VideoAnalysis]
    track_score_thr: float
    counts: dict[str, dict[int, int]] = field(default_factory=dict)  # per category: gt_tracks / results / kept

    def worst_first(self) -> list[VideoAnalysis]:
        return sorted(self.videos, key=VideoAnalysis.sort_key)


def _video_tracking(video: GtVideo, gts: list[GtTrack], kept_all: list[ResultTrack]) -> dict[str, float]:
    """HOTA / CLEAR / Identity of one video pooled over its categories, from the tracking code's sequences."""
    cats = sorted({g.category_id for g in gts} | {r.category_id for r in kept_all})
    parts = []
    for cid in cats:
        seq = build_sequence(video.name, video.length, [g for g in gts if g.category_id == cid],
                             [r for r in kept_all if r.category_id == cid])
        parts.append((hota_sequence(seq), clear_sequence(seq), identity_sequence(seq)))
    if not parts:  # no GT and no counted prediction: the all-zero sequence, as the tracking code treats it
        seq = build_sequence(video.name, video.length, [], [])
        parts.append((hota_sequence(seq), clear_sequence(seq), identity_sequence(seq)))
    return {**hota_summary(hota_combine_sum([p[0] for p in parts])),
            **clear_summary(clear_combine_sum([p[1] for p in parts])),
            **identity_summary(identity_combine_sum([p[2] for p in parts]))}


def _missed_reason(best_low: float, best_other: float, best_iou: float) -> str:
    if best_low >= MATCH_IOU:
        return "below score threshold"
    if best_other >= MATCH_IOU:
        return "wrong class"
    return "poor mask" if best_iou > 0 else "no prediction"


def _coverage(video: GtVideo, gts: list[GtTrack], kept: list[ResultTrack]
              ) -> tuple[dict[int, Timeline], set[int], set[int]]:
    """Timelines by GT id, result indices that cover some GT somewhere, and those reaching the IoU threshold
    with a GT of their category somewhere (covering it or not), category by category."""
    timelines: dict[int, Timeline] = {}
    chosen: set[int] = set()
    reaching: set[int] = set()
    for cid in sorted({g.category_id for g in gts} | {r.category_id for r in kept}):
        cat_gts = [g for g in gts if g.category_id == cid]
        cat_preds = [r for r in kept if r.category_id == cid]
        ious = frame_ious(cat_gts, cat_preds, video.length)  # (T, G_c, P_c)
        for tl in coverage_timelines(cat_gts, cat_preds, ious):
            timelines[tl.gt_id] = tl
            chosen.update(int(i) for i in tl.covering[tl.covering >= 0])
        hit = covers(ious).any(axis=(0, 1))  # (P_c,)
        reaching.update(p.index for p, h in zip(cat_preds, hit) if h)
    return timelines, chosen, reaching


def _missed_tracks(video: GtVideo, gts: list[GtTrack], results: list[ResultTrack], timelines: dict[int, Timeline],
                   vious: np.ndarray, is_kept: np.ndarray, track_score_thr: float) -> list[MissedTrack]:
    """Missed GT tracks with their closest predictions; vious (D, G) video IoUs, is_kept (D,) counted + non-empty."""
    out = []
    low = np.array([r.score < track_score_thr for r in results], dtype=bool)  # (D,)
    for j, g in enumerate(gts):
        tl = timelines[g.id]
        if not tl.missed:
            continue
        col = vious[:, j]  # (D,)
        same = np.array([r.category_id == g.category_id for r in results], dtype=bool)  # (D,)
        best = float(col[same].max(initial=0.0))
        best_low = float(col[same & low].max(initial=0.0))
        other = ~same & is_kept
        best_other, other_cat = 0.0, None
        if other.any():
            k = int(np.flatnonzero(other)[np.argmax(col[other])])
            best_other, other_cat = float(col[k]), results[k].category_id
        out.append(MissedTrack(g.id, video.id, g.category_id, tl.present_frames, best, best_low, best_other,
                               other_cat if best_other > 0 else None, _missed_reason(best_low, best_other, best)))
    return out


def _false_tracks(video: GtVideo, gts: list[GtTrack], results: list[ResultTrack], chosen: set[int],
                  reaching: set[int], vious: np.ndarray, is_kept: np.ndarray) -> list[FalseTrack]:
    """Counted predictions that cover nothing, with their closest GT track (any category) and a reason."""
    out = []
    for d, r in enumerate(results):
        if not is_kept[d] or r.index in chosen:
            continue
        best, gt_id, gt_cat = 0.0, None, None
        if gts:
            j = int(np.argmax(vious[d]))
            if vious[d, j] > 0:
                best, gt_id, gt_cat = float(vious[d, j]), gts[j].id, gts[j].category_id
        if r.index in reaching:
            reason = "duplicate"
        elif best >= MATCH_IOU and gt_cat != r.category_id:
            reason = "wrong class"
        else:
            reason = "poor mask" if best > 0 else "background"
        out.append(FalseTrack(r.index, video.id, r.category_id, r.score, int(np.count_nonzero(r.frame_areas)),
                              best, gt_id, gt_cat, reason))
    return out


def video_iou_matrix(results: list[ResultTrack], gts: list[GtTrack]) -> np.ndarray:
    """Video IoU (D, G) float64 of every prediction against every GT track of one video, any category (the AP
    code's IoU; the report's closest-track columns and ``spvis analyze``'s error assignment both read it)."""
    if not results or not gts:
        return np.zeros((len(results), len(gts)))
    return video_ious([r.rles for r in results], np.stack([r.frame_areas for r in results]),
                      [g.rles for g in gts], np.stack([g.frame_areas for g in gts]))


def analyse_video(video: GtVideo, gts: list[GtTrack], results: list[ResultTrack], *,
                  track_score_thr: float) -> VideoAnalysis:
    """Analysis of one video: ``gts`` and ``results`` are that video's GT tracks and predictions in file order."""
    counted = [r for r in results if r.score >= track_score_thr]  # what the tracking metrics' sequences keep
    is_kept = np.array([r.score >= track_score_thr and bool(r.frame_areas.any()) for r in results], dtype=bool)
    kept = [r for r, k in zip(results, is_kept) if k]
    vious = video_iou_matrix(results, gts)  # (D, G)
    same = np.array([[r.category_id == g.category_id for g in gts] for r in results], dtype=bool
                    ).reshape(len(results), len(gts))  # (D, G)
    best_iou = {g.id: float(vious[same[:, j], j].max(initial=0.0)) for j, g in enumerate(gts)}
    timelines, chosen, reaching = _coverage(video, gts, kept)
    return VideoAnalysis(
        video=video, gt_tracks=list(gts), kept=kept, num_results=len(results),
        timelines=[timelines[g.id] for g in gts], best_iou=best_iou,
        missed=_missed_tracks(video, gts, results, timelines, vious, is_kept, track_score_thr),
        false=_false_tracks(video, gts, results, chosen, reaching, vious, is_kept),
        tracking=_video_tracking(video, gts, counted))


def analyse(gt: GroundTruth, results: list[ResultTrack], *, track_score_thr: float = 0.5) -> ReportAnalysis:
    """Per-video analyses of validated ``results`` against ``gt`` (see the module docstring for the rules)."""
    by_video: dict[int, list[ResultTrack]] = {}
    for r in results:
        by_video.setdefault(r.video_id, []).append(r)
    videos = [analyse_video(v, gt.tracks_by_video.get(v.id, []), by_video.get(v.id, []),
                            track_score_thr=track_score_thr) for v in gt.videos]
    counts: dict[str, dict[int, int]] = {"gt_tracks": {c: 0 for c in gt.category_ids},
                                         "results": {c: 0 for c in gt.category_ids},
                                         "kept": {c: 0 for c in gt.category_ids}}
    for tracks in gt.tracks_by_video.values():
        for g in tracks:
            counts["gt_tracks"][g.category_id] += 1
    for r in results:
        counts["results"][r.category_id] += 1
        counts["kept"][r.category_id] += int(r.score >= track_score_thr)
    return ReportAnalysis(videos, track_score_thr, counts)
