"""Overlay labels: text that grows with the frame and never overprints another label."""

from __future__ import annotations

import numpy as np

from spvis.viz.overlay import draw_overlay, place_labels, text_scale


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_of_crowded_masks_never_overlap_and_stay_inside():
    # 12 objects whose masks all start at the same corner (the real-video case: many tracks top-left)
    boxes = [(140, 22, 5, 3, 60 + k) for k in range(12)]
    spots = place_labels(boxes, 640, 360)
    rects = [(x, y, x + w, y + h) for (x, y), (w, h, *_r) in zip(spots, boxes) if (x, y) is not None]
    assert len(rects) == 12
    assert all(0 <= r[0] and 0 <= r[1] and r[2] <= 640 and r[3] <= 360 for r in rects)
    assert not any(_overlap(a, b) for i, a in enumerate(rects) for b in rects[i + 1:])


def test_a_label_without_room_is_left_out_rather_than_overprinted():
    spots = place_labels([(100, 30, 0, 0, 10)] * 3, 100, 60)
    assert spots[:2] == [(0, 0), (0, 30)] and spots[2] is None


def test_text_scales_with_the_frame():
    assert text_scale(360, 640) < text_scale(1080, 1920) < text_scale(2160, 3840)
    assert text_scale(96, 128) == 0.35


def test_draw_overlay_draws_every_label_of_a_crowded_frame():
    frame = np.zeros((540, 960, 3), np.uint8)
    masks = np.zeros((6, 540, 960), bool)
    for k in range(6):
        masks[k, 10:200, 10 + 5 * k:300] = True
    out = draw_overlay(frame, masks, list(range(1, 7)), [0] * 6, ["person"], [0.9 - 0.1 * k for k in range(6)])
    # each label box is filled with its track colour: six separate filled rectangles along the left edge
    painted_rows = np.nonzero((out[:, 12] != 0).any(axis=1))[0]
    assert out.shape == frame.shape and len(painted_rows) > 6 * 15
