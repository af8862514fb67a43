"""Per-track summaries of one video for streaming inference: flat memory, official top-k at the end.

Per track we keep a running sum of class logits, a frame count and one compressed RLE per frame the
track exists in; nothing else per frame survives. At the end the video-level logits (mean over the
track's frames; for the DVIS baseline every slot lives on every frame, so this is DVIS's mean over T)
go through the official top-k rule (spvis.modeling.postprocess).

RLE encoding is off the critical path: ``RLEEncoder`` encodes a frame's masks on a worker thread while the next
frame runs through the network (pycocotools holds the GIL, torch releases it; the encoder is ``spvis.data.rle``'s), and ``TrackAccumulator`` takes the
frame's RLEs as a future, filing them in frame order as they are done; at most ``MAX_PENDING_FRAMES`` frames wait.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from spvis.data.rle import encode_column_major
from spvis.engine.track_rescoring import soft_suppress_duplicates
from spvis.modeling.postprocess import class_probabilities, topk_instances

MAX_PENDING_FRAMES = 4  # frames whose RLEs may still be encoding: bounds the masks held for the worker


class RLEEncoder:
    """Encodes column-major masks on one worker thread; ``submit`` returns a future of the RLE list."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spvis-rle")

    def submit(self, masks: np.ndarray) -> "Future[list[dict]]":
        """Encode bool (N, W, H) masks (``encode_column_major``); the array must not change until it is done."""
        return self._pool.submit(encode_column_major, masks)

    def close(self) -> None:
        """Finish the queued frames and stop the thread."""
        self._pool.shutdown(wait=True)


@dataclass
class TrackSummary:
    """Everything kept about one track: running logit sum, frame count, per-frame RLEs from birth on."""

    first_frame: int
    logit_sum: np.ndarray  # (K+1,) float64
    count: int = 0
    rles: list[dict | None] = field(default_factory=list)  # frames first_frame, first_frame + 1, ...

    def add_logits(self, logits: np.ndarray) -> None:
        self.logit_sum += logits
        self.count += 1

    def add_rle(self, frame_index: int, rle: dict) -> None:
        """File the track's RLE of ``frame_index`` (frames arrive in order)."""
        gap = frame_index - (self.first_frame + len(self.rles))
        self.rles.extend([None] * gap)  # frames where the track had no slot
        self.rles.append(rle)


class TrackAccumulator:
    """Collects TrackSummary objects per track id over one video."""

    def __init__(self) -> None:
        self.tracks: dict[int, TrackSummary] = {}
        self.num_frames = 0
        self._pending: deque[tuple[int, list[int], Sequence[dict] | Future]] = deque()

    def add_frame(self, frame_index: int, track_ids: np.ndarray, logits: np.ndarray,
                  rles: Sequence[dict] | Future) -> None:
        """track_ids (N,), logits (N, K+1) of the tracks that hold a slot on this frame, and their RLEs (a list,
        or a future of it from ``RLEEncoder``)."""
        ids = track_ids.tolist()
        for track_id, row in zip(ids, logits):
            summary = self.tracks.get(track_id)
            if summary is None:
                summary = self.tracks[track_id] = TrackSummary(frame_index, np.zeros(row.shape, np.float64))
            summary.add_logits(row.astype(np.float64))
        self.num_frames = max(self.num_frames, frame_index + 1)
        self._pending.append((frame_index, ids, rles))
        self._file_rles(wait=len(self._pending) > MAX_PENDING_FRAMES)

    def _file_rles(self, wait: bool) -> None:
        """File the finished frames' RLEs in frame order; ``wait``: block until every pending frame is done."""
        while self._pending:
            frame_index, ids, rles = self._pending[0]
            if isinstance(rles, Future):
                if not wait and not rles.done():
                    return
                rles = rles.result()
            self._pending.popleft()
            for track_id, rle in zip(ids, rles):
                self.tracks[track_id].add_rle(frame_index, rle)

    def video_logits(self) -> tuple[list[int], torch.Tensor]:
        """Track ids and their mean logits (N, K+1) (float32, summed in float64); files every pending RLE first."""
        self._file_rles(wait=True)
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
