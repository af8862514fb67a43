"""Per-frame instance id maps (``spvis infer --save-masks``): one 16-bit PNG per frame, pixel = track id + 1.

Track ids start at 0, so a pixel holds its track id plus one and 0 is background; where masks overlap, the higher-scoring track wins. 16-bit grayscale PNGs open in every
image library as plain integer arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

MAX_TRACK_ID = 65534  # a 16-bit PNG holds 65535 = this + 1


def id_map(masks: np.ndarray, track_ids: Sequence[int], scores: Sequence[float]) -> np.ndarray:
    """uint16 (H, W) map of bool (N, H, W) masks: 1 + the track id of the highest-scoring mask on each pixel, else 0."""
    masks = np.asarray(masks, dtype=bool)
    out = np.zeros(masks.shape[1:], dtype=np.uint16)
    for k in np.argsort(np.asarray(scores, dtype=np.float64), kind="stable"):  # low scores first, high on top
        track = int(track_ids[k])
        if not 0 <= track <= MAX_TRACK_ID:
            raise ValueError(f"track id {track} does not fit a 16-bit id map (0..{MAX_TRACK_ID})")
        out[masks[k]] = track + 1
    return out


def write_id_map(path: str | Path, ids: np.ndarray) -> None:
    """Write a uint16 (H, W) id map as a 16-bit grayscale PNG, atomically."""
    from PIL import Image

    from spvis.utils.atomic_io import atomic_save

    image = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint16))
    atomic_save(path, lambda tmp: image.save(tmp, format="PNG"))


def read_id_map(path: str | Path) -> np.ndarray:
    """The uint16 (H, W) id map of a PNG written by ``write_id_map``."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image, dtype=np.uint16)
