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


def parse_compressed_counts(counts: bytes | str) -> list[int]:
    """Run lengths of a COCO compressed-RLE string (LEB128-like, 6 bits a char, delta after the 2nd run)."""
    data = counts.encode("ascii", errors="replace") if isinstance(counts, str) else counts
    runs: list[int] = []
    pos, n = 0, len(data)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise RLEError("counts string ends in the middle of a run")
            c = data[pos] - 48
            if c < 0 or c > 63:
                raise RLEError(f"counts string has an invalid character {chr(data[pos])!r} at offset {pos}")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
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
        runs = parse_compressed_counts(counts)
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


def rle_area(rle: dict) -> int:
    """Foreground pixel count of a normalised RLE."""
    return int(mask_utils.area(rle))


def rle_bbox(rle: dict) -> list[float]:
    """[x, y, w, h] box of a normalised RLE."""
    return [float(v) for v in mask_utils.toBbox(rle)]
