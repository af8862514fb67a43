"""Per-video result assembly (TrackAccumulator) against hand-built expectations.

A track that loses its slot for some frames must get null on exactly those frames (so its later masks
stay on their own frames), a track born late gets null before birth, and every entry's category is the
dataset id of its own contiguous label.
"""

import numpy as np
from pycocotools import mask as mask_utils

from spvis.data.rle import encode_frame_masks
from spvis.engine.video_results import TrackAccumulator

NO_OBJECT = -5.0  # logit of the no-object column: every track is confidently an object


def _logits(label: int, num_classes: int = 3, strength: float = 8.0) -> np.ndarray:
    row = np.zeros(num_classes + 1, np.float32)
    row[label] = strength
    row[-1] = NO_OBJECT
    return row


def _square(t: int) -> np.ndarray:
    mask = np.zeros((1, 8, 10), bool)
    mask[0, 1:4, t:t + 3] = True
    return mask


def test_gap_frames_are_null_and_later_masks_stay_on_their_frames():
    acc = TrackAccumulator()
    # track 7 on frames 0, 1, 4 (no slot on 2-3); track 9 born on frame 2
    for t in range(5):
        ids, rows, masks = [], [], []
        if t in (0, 1, 4):
            ids.append(7), rows.append(_logits(0)), masks.append(_square(t))
        if t >= 2:
            ids.append(9), rows.append(_logits(2)), masks.append(_square(t + 4))
        rles = encode_frame_masks(np.concatenate(masks)) if masks else []
        acc.add_frame(t, np.array(ids, np.int64), np.stack(rows) if rows else np.zeros((0, 4), np.float32), rles)
    entries = acc.entries(11, max_num=2, category_ids=[10, 20, 30])
    by_category = {e["category_id"]: e for e in entries}
    assert sorted(by_category) == [10, 30]  # label 0 -> id 10 (track 7), label 2 -> id 30 (track 9)
    seven, nine = by_category[10]["segmentations"], by_category[30]["segmentations"]
    assert len(seven) == len(nine) == 5
    assert [s is None for s in seven] == [False, False, True, True, False]
    assert [s is None for s in nine] == [True, True, False, False, False]
    for t in (0, 1, 4):  # each stored mask is the one made on that frame
        rle = dict(seven[t], counts=seven[t]["counts"].encode())
        assert np.array_equal(mask_utils.decode(rle).astype(bool), _square(t)[0])
    rle = dict(nine[2], counts=nine[2]["counts"].encode())
    assert np.array_equal(mask_utils.decode(rle).astype(bool), _square(6)[0])
    assert all(e["video_id"] == 11 for e in entries)


def test_scores_are_the_softmax_of_the_mean_logits():
    acc = TrackAccumulator()
    rles = encode_frame_masks(_square(0))
    acc.add_frame(0, np.array([3]), _logits(1, strength=2.0)[None], rles)
    acc.add_frame(1, np.array([3]), _logits(1, strength=4.0)[None], rles)
    (entry,) = acc.entries(1, max_num=1)
    mean = np.array([0.0, 3.0, 0.0, NO_OBJECT])
    expected = np.exp(3.0) / np.exp(mean).sum()
    assert entry["category_id"] == 2 and abs(entry["score"] - expected) < 1e-6
