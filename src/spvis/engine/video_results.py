"""Per-track summaries of one video for streaming inference: flat memory, official top-k at the end.

Per track we keep a running sum of class logits, a frame count and one compressed RLE per frame the
track exists in; nothing else per frame survives. At the end the video-level logits (mean over the
track's frames; for the DVIS baseline every slot lives on every frame, so this is DVIS's mean over T)
go through the official top-k rule (spvis.modeling.postprocess).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from pycocotools import mask as mask_utils

from spvis.engine.track_rescoring import soft_suppress_duplicates
from spvis.modeling.postprocess import class_probabilities, topk_instances


def encode_frame_masks(masks: np.ndarray) -> list[dict]:
    """Compressed RLEs (json-ready str counts) of bool (N, H, W) masks, encoded in one pycocotools call."""
    if masks.shape[0] == 0:
        return []
    as_u8 = masks.view(np.uint8) if masks.dtype == np.bool_ else masks.astype(np.uint8)  # no copy for bool
    rles = mask_utils.encode(np.asfortranarray(as_u8.transpose(1, 2, 0)))  # one transposing copy
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


@dataclass
class TrackSummary:
    """Everything kept about one track: running logit sum, frame count, per-frame RLEs from birth on."""

    first_frame: int
    logit_sum: np.ndarray  # (K+1,) float64
    count: int = 0
    rles: list[dict | None] = field(default_factory=list)  # frames first_frame, first_frame + 1, ...

    def add(self, frame_index: int, logits: np.ndarray, rle: dict) -> None:
        gap = frame_index - (self.first_frame + len(self.rles))
        self.rles.extend([None] * gap)  # frames where the track had no slot
        self.rles.append(rle)
        self.logit_sum += logits
        self.count += 1


class TrackAccumulator:
    """Collects TrackSummary objects per track id over one video."""

    def __init__(self) -> None:
        self.tracks: dict[int, TrackSummary] = {}
        self.num_frames = 0

    def add_frame(self, frame_index: int, track_ids: np.ndarray, logits: np.ndarray, rles: Sequence[dict]) -> None:
        """track_ids (N,), logits (N, K+1) of the tracks that hold a slot on this frame, one RLE each."""
        for track_id, row, rle in zip(track_ids.tolist(), logits, rles):
            summary = self.tracks.get(track_id)
            if summary is None:
                summary = self.tracks[track_id] = TrackSummary(frame_index, np.zeros(row.shape, np.float64))
            summary.add(frame_index, row.astype(np.float64), rle)
        self.num_frames = max(self.num_frames, frame_index + 1)

    def video_logits(self) -> tuple[list[int], torch.Tensor]:
        """Track ids and their mean logits (N, K+1) (float32, summed in float64)."""
        ids = sorted(self.tracks)
        if not ids:
            return [], torch.zeros(0, 1)
        rows = np.stack([self.tracks[i].logit_sum / self.tracks[i].count for i in ids])
        return ids, torch.from_numpy(rows.astype(np.float32))

    def entries(self, video_id: int | str, *, max_num: int, category_ids: Sequence[int] | None = None,
                score_thr: float = 0.0, nms_iou: float = 0.0) -> list[dict]:
        """Benchmark-format results: top-k over (track, class), one entry each, score >= score_thr.

        ``category_ids[k]`` is the dataset id of contiguous class k (default k + 1); ``nms_iou`` > 0
        soft-suppresses duplicate tracks first (``track_rescoring``).
        """
        ids, logits = self.video_logits()
        if not ids:
            return []
        scores, labels, rows = topk_instances(class_probabilities(logits), max_num)
        order = torch.argsort(scores, descending=True, stable=True)
        results, result_tracks = [], []
        for index in order.tolist():
            score = float(scores[index])
            summary = self.tracks[ids[int(rows[index])]]
            segmentations = [None] * summary.first_frame + list(summary.rles)
            segmentations += [None] * (self.num_frames - len(segmentations))
            label = int(labels[index])
            results.append({
                "video_id": video_id,
                "category_id": int(category_ids[label]) if category_ids is not None else label + 1,
                "score": score,
                "segmentations": segmentations,
                "track_id": int(ids[int(rows[index])]),  # VideoResult moves it to entry_track_ids
            })
            result_tracks.append(ids[int(rows[index])])
        results = soft_suppress_duplicates(results, result_tracks, nms_iou)
        return [entry for entry in results if entry["score"] >= score_thr]
