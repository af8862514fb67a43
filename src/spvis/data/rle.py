"""Per-frame segmentations of YTVIS/OVIS/COCO files: normalise to compressed RLE, validate, decode.

A segmentation is a compressed RLE (``counts`` a string), an uncompressed RLE (``counts`` a list of
ints), a polygon list, or None (object absent). Everything is normalised to compressed RLE with
``bytes`` counts so pycocotools can decode it; validation parses the counts string itself, because
pycocotools does not check that the runs add up to H*W (a corrupt string decodes to garbage).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


class RLEError(ValueError):
    """A segmentation cannot be decoded; the message says why (the caller adds file and ids)."""


def parse_compressed_counts(counts: bytes | str) -> np.ndarray:
    """Run lengths (int64 array) of a COCO compressed-RLE string: 5 data bits per char, a continuation bit,
    sign extension in the last char, runs after the 2nd stored as deltas to the run two before.

    Vectorised with numpy: ``spvis data check`` parses every RLE of a dataset (100k+ strings for YTVIS), and
    pycocotools offers no validating parser.
    """
    data = counts.encode("ascii", errors="replace") if isinstance(counts, str) else bytes(counts)
    if not data:
        return np.zeros(0, dtype=np.int64)
    c = np.frombuffer(data, dtype=np.uint8).astype(np.int64) - 48  # (L,)
    bad = np.flatnonzero((c < 0) | (c > 63))
    if bad.size:
        pos = int(bad[0])
        raise RLEError(f"counts string has an invalid character {chr(data[pos])!r} at offset {pos}")
    more = (c & 0x20) != 0
    if more[-1]:
        raise RLEError("counts string ends in the middle of a run")
    ends = np.flatnonzero(~more)  # last char of each run
    starts = np.concatenate(([0], ends[:-1] + 1))
    run_of_char = np.repeat(np.arange(ends.size), ends - starts + 1)
    shift = 5 * (np.arange(c.size) - starts[run_of_char])
    if shift.max() > 55:
        raise RLEError("counts string has a run longer than 64 bits")
    values = np.add.reduceat((c & 0x1F) << shift, starts)  # (R,)
    negative = (c[ends] & 0x10) != 0
    values = values - np.where(negative, np.left_shift(1, shift[ends] + 5), 0)
    runs = values.copy()
    if runs.size > 3:  # runs[i] = v[i] + runs[i-2] for i > 2: a cumulative sum over odd indices from 1, even from 2
        runs[1::2] = np.cumsum(values[1::2])
        runs[2::2] = np.cumsum(values[2::2])
    return runs


def check_rle(rle: dict, height: int, width: int) -> None:
    """Raise RLEError unless ``rle`` is a well-formed RLE of an (height, width) mask."""
    size = rle.get("size")
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise RLEError(f"RLE 'size' must be [height, width], got {size!r}")
    if [int(size[0]), int(size[1])] != [int(height), int(width)]:
        raise RLEError(f"mask size {list(size)} differs from the video size [{height}, {width}]")
    counts = rle.get("counts")
    if isinstance(counts, list):
        runs = counts
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in runs):
            raise RLEError("uncompressed RLE counts must be integers")
    elif isinstance(counts, (str, bytes)):
        runs = parse_compressed_counts(counts).tolist()
    else:
        raise RLEError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")
    if any(v < 0 for v in runs):
        raise RLEError("RLE has a negative run length")
    total = sum(runs)
    if total != height * width:
        raise RLEError(f"RLE runs cover {total} pixels, expected {height}x{width}={height * width}")


def normalize_segmentation(segm: Any, height: int, width: int) -> dict | None:
    """Compressed RLE (bytes counts) of one frame's segmentation, or None when absent / no valid polygon."""
    if segm is None:
        return None
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise RLEError("RLE must have 'counts' and 'size'")
        size = segm["size"]
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise RLEError(f"RLE 'size' must be [height, width], got {size!r}")
        if [int(size[0]), int(size[1])] != [int(height), int(width)]:
            raise RLEError(f"mask size {list(size)} differs from the video size [{height}, {width}]")
        counts = segm["counts"]
        if isinstance(counts, list):
            if sum(int(v) for v in counts) != height * width:
                raise RLEError(f"uncompressed RLE runs do not cover {height}x{width} pixels")
            return mask_utils.frPyObjects(segm, height, width)
        if isinstance(counts, str):
            return {"size": [height, width], "counts": counts.encode("ascii")}
        if isinstance(counts, bytes):
            return {"size": [height, width], "counts": counts}
        raise RLEError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")
    if isinstance(segm, list):
        polygons = [p for p in segm if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
        if not polygons:
            return None  # invalid polygons are dropped, as the official loaders do
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    raise RLEError(f"segmentation must be an RLE dict, a polygon list or null, got {type(segm).__name__}")


def decode_rle(rle: dict) -> np.ndarray:
    """Bool (H, W) mask of a normalised RLE."""
    return mask_utils.decode(rle).astype(bool)


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed RLE with a str ``counts`` (json-ready) of a bool (H, W) mask."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


# pycocotools 2.0.x ``area()`` on a list allocates its output with the dtype numpy infers from the list length;
# with numpy 2 a list of 256 or more RLEs raises OverflowError ("out of bounds for uint8"). Every area goes
# through the helpers below, which never hand it more than this many RLEs at once.
AREA_CHUNK = 128


def rle_areas(rles: list[dict]) -> np.ndarray:
    """Foreground pixel counts (int64 (N,)) of normalised RLEs, any N (chunked under pycocotools' limit)."""
    out = np.zeros(len(rles), dtype=np.int64)
    for start in range(0, len(rles), AREA_CHUNK):
        out[start:start + AREA_CHUNK] = mask_utils.area(list(rles[start:start + AREA_CHUNK]))
    return out


def rle_area(rle: dict) -> int:
    """Foreground pixel count of one normalised RLE (a single dict: pycocotools' scalar path, no list)."""
    return int(mask_utils.area(rle))


def rle_bbox(rle: dict) -> list[float]:
    """[x, y, w, h] box of a normalised RLE."""
    return [float(v) for v in mask_utils.toBbox(rle)]
