"""Overlays (stable colour per track id, labels) and the atomic mp4 writer."""

from __future__ import annotations


import av
import numpy as np
import pytest

from spvis.viz.overlay import draw_overlay, track_colour
from spvis.viz.video_writer import VideoWriter


def test_track_colour_is_stable_and_distinct():
    assert track_colour(7) == track_colour(7)
    colours = {track_colour(i) for i in range(1, 21)}
    assert len(colours) == 20


def test_overlay_colours_masks_and_keeps_input():
    frame = np.full((60, 80, 3), 100, dtype=np.uint8)
    before = frame.copy()
    masks = np.zeros((2, 60, 80), dtype=bool)
    masks[0, 30:50, 5:25] = True
    masks[1, 30:50, 50:70] = True
    out = draw_overlay(frame, masks, [3, 9], [0, 1], ["cat", "dog"], scores=[0.9, 0.4])
    assert np.array_equal(frame, before) and out.dtype == np.uint8 and out.shape == frame.shape
    inside = out[40, 15].astype(int)  # centre of mask 0, away from outline and label
    expected = 0.5 * 100 + 0.5 * np.array(track_colour(3))
    assert np.abs(inside - expected).max() <= 1
    assert np.array_equal(out[5, 40], before[5, 40])  # untouched background far from any label
    again = draw_overlay(frame, masks[:1], [3], [0], ["cat"])
    assert np.array_equal(again[40, 15], out[40, 15])  # same id -> same colour in another frame
    label_band = out[20:30, 5:40]
    assert (np.abs(label_band.astype(int) - 100).sum(-1) > 0).any()  # a label is drawn above the mask


def test_overlay_rejects_bad_shapes():
    frame = np.zeros((10, 10, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"masks \(N, 10, 10\)"):
        draw_overlay(frame, np.zeros((1, 5, 5), dtype=bool), [1], [0], ["a"])
    with pytest.raises(ValueError, match="1 masks but 2 track ids"):
        draw_overlay(frame, np.zeros((1, 10, 10), dtype=bool), [1, 2], [0], ["a"])


def test_writer_is_atomic_and_pads_odd_sizes(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path, fps=5) as writer:
            writer.write(np.zeros((31, 45, 3), dtype=np.uint8))
            raise RuntimeError("stop")
    assert not path.exists() and list(tmp_path.iterdir()) == []
    with VideoWriter(path, fps=5) as writer:
        for t in range(6):
            writer.write(np.full((31, 45, 3), 40 * t, dtype=np.uint8))
            assert not path.exists()  # only the temporary file exists while writing
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 6 and frames[0].shape == (32, 46, 3)
    assert abs(int(frames[5][10, 10, 0]) - 200) < 8
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    with pytest.raises(ValueError, match="frame 6 is 64x64"):
        with VideoWriter(tmp_path / "x.mp4", fps=5) as writer:
            writer.write(np.zeros((31, 45, 3), dtype=np.uint8))
            for _ in range(5):
                writer.write(np.zeros((31, 45, 3), dtype=np.uint8))
            writer.write(np.zeros((64, 64, 3), dtype=np.uint8))
