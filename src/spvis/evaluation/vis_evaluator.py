"""``VISEvaluator``: the ``spvis eval`` metrics, fed one video at a time (detectron2's reset / process / evaluate).

Inference loops hand over each video's entries as they finish; the evaluator validates them at once (the same
checks and one-line errors as a results file) and keeps only the compressed masks, so nothing has to be
written to disk first. ``evaluate()`` returns exactly the dict ``spvis eval`` writes for a results file holding
the same entries in the same order (tested).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable

from spvis.errors import DataFormatError
from spvis.evaluation.evaluator import evaluate_loaded
from spvis.evaluation.ground_truth import GroundTruth, load_ground_truth
from spvis.evaluation.results_io import ResultTrack, load_results


class VISEvaluator:
    """YouTube-VIS / OVIS AP/AR and tracking metrics over videos processed one by one.

    ``gt``: a ground-truth json path, its parsed dict or a loaded GroundTruth. ``process(video_id, entries)``
    takes the benchmark-format entries of one video (``video_id`` may be omitted in them); a video given
    twice is an error, as detectron2 refuses duplicate keys. ``reset()`` forgets every processed video.
    """

    def __init__(self, gt: str | os.PathLike | dict | GroundTruth, *, track_score_thr: float = 0.5,
                 per_category: bool = False):
        self.gt = gt if isinstance(gt, GroundTruth) else load_ground_truth(gt if isinstance(gt, dict) else Path(gt))
        self.track_score_thr, self.per_category = track_score_thr, per_category
        self.reset()

    def reset(self) -> None:
        """Drop every processed video (start a new evaluation with the same ground truth)."""
        self._results: list[ResultTrack] = []
        self._videos: set[int] = set()

    def process(self, video_id: int, entries: Iterable[dict]) -> None:
        """Validate and keep one video's entries (dicts with category_id, score, segmentations)."""
        batch = []
        for k, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise DataFormatError(f"<video {video_id}>", "must be an object", entry=f"result {k}")
            if entry.get("video_id", video_id) != video_id:
                raise DataFormatError(f"<video {video_id}>", f"belongs to video {entry.get('video_id')!r}",
                                      entry=f"result {k}", field="video_id")
            batch.append({**entry, "video_id": video_id})
        if video_id in self._videos:
            raise DataFormatError(f"<video {video_id}>", "processed twice (call reset() to start over)",
                                  field="video_id")
        loaded = load_results(batch, self.gt)
        offset = len(self._results)  # official result ids follow the order of processing
        self._results.extend(dataclasses.replace(track, index=offset + k) for k, track in enumerate(loaded))
        self._videos.add(video_id)

    def evaluate(self) -> dict:
        """The metrics dict of ``spvis eval`` (AP/AR, per-category AP, tracking, info) over the processed videos;
        videos of the GT never processed count as having no predictions."""
        return evaluate_loaded(self.gt, list(self._results), track_score_thr=self.track_score_thr,
                               per_category=self.per_category)
