"""Instance overlays: a translucent colour per track id (stable across frames), outline and class label."""

from __future__ import annotations

import colorsys
from typing import Sequence

import cv2
import numpy as np

_GOLDEN = 0.618033988749895  # successive ids get well-separated hues
ALPHA = 0.5  # mask opacity


def track_colour(track_id: int) -> tuple[int, int, int]:
    """RGB colour of a track id: a pure function of the id, so the same id has the same colour in every frame."""
    hue = (int(track_id) * _GOLDEN) % 1.0
    sat = 0.65 + 0.3 * ((int(track_id) * 7) % 3) / 2  # vary saturation/value too, so neighbouring hues differ
    val = 0.95 - 0.2 * ((int(track_id) * 5) % 2)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def _label_text(label: int, names: Sequence[str], track_id: int, score: float | None) -> str:
    name = names[label] if 0 <= label < len(names) else f"class {label}"
    text = f"{name} #{track_id}"
    return text if score is None else f"{text} {score:.2f}"


def draw_overlay(frame: np.ndarray, masks: np.ndarray, track_ids: Sequence[int], labels: Sequence[int],
                 names: Sequence[str], scores: Sequence[float] | None = None, *, alpha: float = ALPHA) -> np.ndarray:
    """uint8 (H, W, 3) RGB frame with each mask (N, H, W) bool blended in its track colour and labelled.

    ``labels`` are contiguous class ids indexing ``names``; ``scores`` (optional) are printed after the id.
    The input frame is not modified.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"draw_overlay expects a uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1:] != frame.shape[:2]:
        raise ValueError(f"draw_overlay expects masks (N, {frame.shape[0]}, {frame.shape[1]}), got {masks.shape}")
    n = masks.shape[0]
    if len(track_ids) != n or len(labels) != n or (scores is not None and len(scores) != n):
        raise ValueError(f"draw_overlay: {n} masks but {len(track_ids)} track ids, {len(labels)} labels"
                         + ("" if scores is None else f", {len(scores)} scores"))
    out = frame.astype(np.float32)  # (H, W, 3)
    colours = [np.array(track_colour(int(t)), dtype=np.float32) for t in track_ids]
    for m, colour in zip(masks, colours):
        out[m] = out[m] * (1 - alpha) + colour * alpha
    canvas = np.ascontiguousarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    scale = text_scale(*frame.shape[:2])
    thick = max(1, int(round(scale * 2)))
    present = [i for i, m in enumerate(masks) if m.any()]
    wanted, texts = [], []
    for i in present:
        colour = tuple(int(c) for c in colours[i])
        contours, _ = cv2.findContours(masks[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, colour, thick)
        ys, xs = np.nonzero(masks[i])
        text = _label_text(int(labels[i]), names, int(track_ids[i]), None if scores is None else float(scores[i]))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        wanted.append((tw, th + base, int(xs.min()), int(ys.min()), int(ys.max())))
        texts.append((text, colour, base))
    # higher scores choose their spot first
    order = sorted(range(len(present)), key=lambda k: -(float(scores[present[k]]) if scores is not None else 0.0))
    spots = place_labels([wanted[k] for k in order], frame.shape[1], frame.shape[0])
    for k, spot in zip(order, spots):
        if spot is None:
            continue  # no free place left on the frame: better no label than one over another
        (x, y), (text, colour, base), (tw, h, *_rest) = spot, texts[k], wanted[k]
        cv2.rectangle(canvas, (x, y), (x + tw, y + h), colour, -1)
        cv2.putText(canvas, text, (x, y + h - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return canvas


def text_scale(height: int, width: int) -> float:
    """OpenCV font scale for a frame, proportional to its short side (1.2 at 1080p, 0.8 at 720p), at least 0.35
    so labels stay legible on small frames."""
    return max(0.35, min(height, width) / 900)


def place_labels(boxes: Sequence[tuple[int, int, int, int, int]], width: int,
                 height: int) -> list[tuple[int, int] | None]:
    """Top-left corners for label boxes that never overlap each other and stay inside the frame.

    ``boxes``: (box width, box height, mask left x, mask top y, mask bottom y) in placement priority order.
    Each label tries above its mask, then inside its top, then below it, then slides down and up the frame
    from there in steps of its own height; a label with no free spot gets None (it is not drawn).
    """
    placed: list[tuple[int, int, int, int]] = []
    spots: list[tuple[int, int] | None] = []
    for tw, th, left, top, bottom in boxes:
        tw, th = min(tw, width), min(th, height)  # a label wider than the frame is clipped, not dropped
        x = min(max(left, 0), max(width - tw, 0))
        starts = [top - th, top, bottom + 1]
        steps = range(1, height // max(th, 1) + 1)
        candidates = starts + [starts[0] + k * th for k in steps] + [starts[0] - k * th for k in steps]
        spot = None
        for y in candidates:
            y = min(max(y, 0), max(height - th, 0))
            rect = (x, y, x + tw, y + th)
            if not any(_overlaps(rect, other) for other in placed):
                spot = (x, y)
                placed.append(rect)
                break
        spots.append(spot)
    return spots


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
