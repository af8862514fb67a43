"""TEST.TRACK_NMS_IOU: duplicate tracks are soft-suppressed, other classes of one track and separate objects
are not (engine.track_rescoring)."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from spvis.engine.track_rescoring import soft_suppress_duplicates


def _rle(box: tuple[int, int, int, int] | None) -> dict | None:
    if box is None:
        return None
    mask = np.zeros((20, 20), dtype=np.uint8, order="F")
    y0, x0, y1, x1 = box
    mask[y0:y1, x0:x1] = 1
    return mask_utils.encode(mask)


def _entry(score: float, boxes: list, category: int = 1) -> dict:
    return {"video_id": 1, "category_id": category, "score": score, "segmentations": [_rle(b) for b in boxes]}


def test_a_duplicate_track_is_decayed_by_its_video_iou():
    a = _entry(0.9, [(0, 0, 10, 10), (0, 0, 10, 10)])
    dup = _entry(0.8, [(0, 0, 10, 10), None])  # same object on frame 0, gone on frame 1: video IoU 100/200
    other = _entry(0.7, [(12, 12, 20, 20), (12, 12, 20, 20)])
    out = soft_suppress_duplicates([dup, a, other], [2, 1, 3], iou_thr=0.3)
    assert [e["score"] for e in out] == [0.9, 0.7, 0.8 * (1 - 0.5)]
    assert out[2]["segmentations"] is dup["segmentations"]  # masks untouched


def test_other_classes_of_one_track_and_a_threshold_above_the_iou_are_kept():
    a, a_other_class = _entry(0.9, [(0, 0, 10, 10)]), _entry(0.6, [(0, 0, 10, 10)], category=2)
    assert [e["score"] for e in soft_suppress_duplicates([a, a_other_class], [1, 1], 0.3)] == [0.9, 0.6]
    half = _entry(0.8, [(0, 0, 10, 5)])  # IoU 0.5 with a
    assert [e["score"] for e in soft_suppress_duplicates([a, half], [1, 2], 0.6)] == [0.9, 0.8]
    assert soft_suppress_duplicates([a, half], [1, 2], 0.0) == [a, half]  # off
