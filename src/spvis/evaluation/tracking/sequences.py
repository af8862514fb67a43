"""Per (category, video) detection sequences for the tracking metrics, built as TrackEval's YouTubeVIS does.

A GT detection at frame t is every GT track of the category whose entry at t is truthy (crowd GT
included, nothing removed). A tracker detection is a prediction with score >= the threshold whose
mask at t is non-empty (TrackEval itself counts every prediction and every empty RLE; reference §2.1,
we apply the threshold and drop empty masks first, as the metrics are meant for final tracks).
Ids are relabelled 0..n-1 in ascending original id (GT: annotation id; predictions: file order);
within a frame detections keep file order, so the Hungarian solver sees TrackEval's exact matrices.
Similarity = per-frame mask IoU from pycocotools (no crowd handling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spvis.data.rle import rle_ious
from spvis.evaluation.ground_truth import GroundTruth, GtTrack
from spvis.evaluation.results_io import ResultTrack


@dataclass
class Sequence:
    """One video for one category: per frame the contiguous GT / tracker ids and their IoUs."""

    name: str
    num_timesteps: int
    gt_ids: list[np.ndarray]  # per frame (g_t,) int64; all three lists empty when one side has no detection
    tracker_ids: list[np.ndarray]  # per frame (p_t,) int64
    similarity: list[np.ndarray]  # per frame (g_t, p_t) float64 IoU
    num_gt_ids: int
    num_tracker_ids: int
    num_gt_dets: int
    num_tracker_dets: int


def _contiguous(original_ids: list[int]) -> dict[int, int]:
    return {orig: i for i, orig in enumerate(sorted(set(original_ids)))}


def build_sequence(name: str, num_frames: int, gts: list[GtTrack], preds: list[ResultTrack]) -> Sequence:
    """Sequence of one video for one category (``gts`` in file order, ``preds`` already score-filtered)."""
    gt_present = [[t for t in range(num_frames) if g.rles[t] is not None] for g in gts]
    pred_present = [[t for t in range(num_frames) if p.frame_areas[t] > 0] for p in preds]
    gt_map = _contiguous([g.id for g, frames in zip(gts, gt_present) if frames])
    pred_map = {i: k for k, i in enumerate(i for i, frames in enumerate(pred_present) if frames)}
    num_gt_dets = sum(len(f) for f in gt_present)
    num_tracker_dets = sum(len(f) for f in pred_present)
    if num_gt_dets == 0 or num_tracker_dets == 0:
        # every metric answers from the counts alone when one side is empty (TrackEval's early returns)
        return Sequence(name=name, num_timesteps=num_frames, gt_ids=[], tracker_ids=[], similarity=[],
                        num_gt_ids=len(gt_map), num_tracker_ids=len(pred_map), num_gt_dets=num_gt_dets,
                        num_tracker_dets=num_tracker_dets)
    gt_at: list[list[int]] = [[] for _ in range(num_frames)]
    pred_at: list[list[int]] = [[] for _ in range(num_frames)]
    for j, frames in enumerate(gt_present):
        for t in frames:
            gt_at[t].append(j)
    for i, frames in enumerate(pred_present):
        for t in frames:
            pred_at[t].append(i)
    gt_ids, tracker_ids, similarity = [], [], []
    for t in range(num_frames):
        g_idx, p_idx = gt_at[t], pred_at[t]
        gt_ids.append(np.array([gt_map[gts[j].id] for j in g_idx], dtype=np.int64))
        tracker_ids.append(np.array([pred_map[i] for i in p_idx], dtype=np.int64))
        if g_idx and p_idx:
            similarity.append(rle_ious([gts[j].rles[t] for j in g_idx], [preds[i].rles[t] for i in p_idx]))
        else:
            similarity.append(np.zeros((len(g_idx), len(p_idx))))
    return Sequence(
        name=name, num_timesteps=num_frames, gt_ids=gt_ids, tracker_ids=tracker_ids, similarity=similarity,
        num_gt_ids=len(gt_map), num_tracker_ids=len(pred_map),
        num_gt_dets=num_gt_dets, num_tracker_dets=num_tracker_dets)


def build_sequences(gt: GroundTruth, results: list[ResultTrack], score_threshold: float) -> dict[int, list[Sequence]]:
    """Sequences per category id, videos sorted by name as TrackEval does (only those where the category occurs)."""
    kept: dict[tuple[int, int], list[ResultTrack]] = {}
    for r in results:
        if r.score >= score_threshold:
            kept.setdefault((r.video_id, r.category_id), []).append(r)
    gts_by_cell: dict[tuple[int, int], list[GtTrack]] = {}
    for vid, tracks in gt.tracks_by_video.items():
        for g in tracks:
            gts_by_cell.setdefault((vid, g.category_id), []).append(g)
    videos = sorted(gt.videos, key=lambda v: v.name)
    out: dict[int, list[Sequence]] = {}
    for cat in gt.categories:
        cid = int(cat["id"])
        # videos where the category has neither GT nor predictions are left out (they only add zeros)
        out[cid] = [build_sequence(v.name, v.length, gts_by_cell.get((v.id, cid), []), kept.get((v.id, cid), []))
                    for v in videos if (v.id, cid) in gts_by_cell or (v.id, cid) in kept]
    return out
