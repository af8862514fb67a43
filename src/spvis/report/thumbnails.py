"""Small JPEG thumbnails of video frames with GT and prediction outlines, as data URIs for an inline <img>.

Predictions are drawn as solid outlines in their timeline colour, GT on top as a dashed white outline,
so a perfect prediction still shows both. Masks are resized to the thumbnail with nearest neighbour.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from spvis.data.rle import decode_rle

THUMB_WIDTH = 200
JPEG_QUALITY = 80


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Bool (h, w) band about 2 px wide along the boundary of a bool (h, w) mask."""
    padded = np.pad(mask, 1)
    eroded = np.ones_like(mask)
    dilated = np.zeros_like(mask)
    h, w = mask.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            shifted = padded[dy:dy + h, dx:dx + w]
            eroded &= shifted
            dilated |= shifted
    return dilated & ~eroded


def _resized_mask(rle: dict, size: tuple[int, int]) -> np.ndarray:
    """Bool (h, w) thumbnail-size mask of a compressed RLE; ``size`` = (w, h)."""
    from PIL import Image

    full = decode_rle(rle).view(np.uint8)  # (H, W) 0/1
    return np.asarray(Image.fromarray(full * 255).resize(size, Image.NEAREST)) > 127


def thumbnail_size(height: int, width: int) -> tuple[int, int]:
    """(w, h) of a thumbnail of a ``height`` x ``width`` frame (THUMB_WIDTH wide, aspect kept)."""
    return THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))


def thumbnail_data_uri(image_path: Path | None, *, height: int, width: int, gt_rles: list[dict],
                       pred_rles: list[tuple[dict, str]]) -> str:
    """``data:image/jpeg;base64,...`` of the frame at ``image_path`` (grey if None) with outlines drawn.

    gt_rles: GT masks of the frame; pred_rles: (mask, "#rrggbb") of the predictions of the frame.
    """
    from PIL import Image

    from spvis.data.png_io import open_image

    size = thumbnail_size(height, width)
    if image_path is None:
        canvas = np.full((size[1], size[0], 3), 96, dtype=np.uint8)
    else:
        with open_image(image_path) as img:  # a huge or bomb frame: an OSError, shown as an unreadable frame
            canvas = np.array(img.convert("RGB").resize(size, Image.BILINEAR))  # (h, w, 3) uint8
    h, w = canvas.shape[:2]
    dashes = (np.add.outer(np.arange(h), np.arange(w)) // 3) % 2 == 0  # (h, w)
    for rle, colour in pred_rles:
        canvas[_outline(_resized_mask(rle, size))] = _hex_rgb(colour)
    for rle in gt_rles:
        canvas[_outline(_resized_mask(rle, size)) & dashes] = (255, 255, 255)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
