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

from spvis.data.rle_batch import validate_counts

# Polygon vertices may lie a little outside the frame (COCO has some); beyond this fraction of a side per
# direction they are corrupt, and pycocotools' outline rasteriser would allocate memory in proportion.
POLYGON_MARGIN = 1.0
MAX_POLYGON_COORDS = 1_000_000
MAX_POLYGON_OUTLINE = 4_000_000  # summed outline length (pixels) of one segmentation's polygons: ~160 MB to rasterise


class RLEError(ValueError):
    """A segmentation cannot be decoded; the message says why (the caller adds file and ids)."""


def parse_compressed_counts(counts: bytes | str) -> np.ndarray:
    """Run lengths (int64 array) of a COCO compressed-RLE string: 5 data bits per char, a continuation bit,
    sign extension in the last char, runs after the 2nd stored as deltas to the run two before.

    Vectorised with numpy: ``spvis data check`` parses every RLE of a dataset (100k+ strings for YTVIS), and
    pycocotools offers no validating parser.
    """
    data = counts_bytes(counts) if isinstance(counts, str) else bytes(counts)
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


def counts_bytes(counts: str | bytes) -> bytes:
    """The compressed-RLE ``counts`` as bytes; RLEError for a character outside ASCII (never a valid run char)."""
    if isinstance(counts, bytes):
        return counts
    try:
        return counts.encode("ascii")
    except UnicodeEncodeError as exc:
        raise RLEError(f"counts string has a non-ASCII character {counts[exc.start]!r} at offset {exc.start}") \
            from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(size: Any, height: int, width: int) -> None:
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(_is_int(v) for v in size):
        raise RLEError(f"RLE 'size' must be [height, width] integers, got {_short(size)}")
    if [size[0], size[1]] != [int(height), int(width)]:
        raise RLEError(f"mask size {list(size)} differs from the video size [{height}, {width}]")


def _check_uncompressed(runs: list, height: int, width: int) -> None:
    if not all(_is_int(v) for v in runs):
        raise RLEError("uncompressed RLE counts must be integers")
    if any(v < 0 for v in runs):
        raise RLEError("RLE has a negative run length")
    if sum(runs) != height * width:
        raise RLEError(f"uncompressed RLE runs do not cover {height}x{width} pixels")


def check_rle(rle: dict, height: int, width: int) -> None:
    """Raise RLEError unless ``rle`` is a well-formed RLE of an (height, width) mask."""
    _check_size(rle.get("size"), height, width)
    counts = rle.get("counts")
    if isinstance(counts, list):
        _check_uncompressed(counts, height, width)
    elif isinstance(counts, (str, bytes)):
        _, errors = validate_counts([counts_bytes(counts)], [(int(height), int(width))])
        if errors[0] is not None:
            raise RLEError(errors[0])
    else:
        raise RLEError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_polygons(polygons: list[list], height: int, width: int) -> None:
    """RLEError unless every coordinate is a finite number near the frame and the outlines fit the budget:
    pycocotools rasterises a polygon along its outline (5x upsampled), so a vertex at 1e9 allocates gigabytes
    and one at 1e308 crashes the process."""
    outline = 0.0
    for polygon in polygons:
        if len(polygon) > MAX_POLYGON_COORDS:
            raise RLEError(f"polygon has {len(polygon)} coordinates, more than the budget of {MAX_POLYGON_COORDS:,}")
        for k, v in enumerate(polygon):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RLEError(f"polygon coordinates must be numbers, got {_short(v)} at index {k}")
        xy = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)  # (P, 2) x, y
        low = -POLYGON_MARGIN * np.array([width, height])
        high = (1 + POLYGON_MARGIN) * np.array([width, height])
        outside = ~((xy >= low) & (xy <= high))  # nan is outside too
        if outside.any():
            p, axis = (int(i) for i in np.argwhere(outside)[0])
            raise RLEError(f"polygon coordinate {'xy'[axis]}={polygon[2 * p + axis]!r} at index {2 * p + axis} is "
                           f"not a finite number near the {width}x{height} frame")
        outline += float(np.abs(np.diff(xy, axis=0, append=xy[:1])).max(axis=1).sum())
    if outline > MAX_POLYGON_OUTLINE:
        raise RLEError(f"polygon outlines are {outline:,.0f} pixels long, more than the budget of "
                       f"{MAX_POLYGON_OUTLINE:,}")


def normalize_segmentation(segm: Any, height: int, width: int) -> dict | None:
    """Compressed RLE (bytes counts) of one frame's segmentation, or None when absent / no valid polygon.

    Uncompressed RLEs and polygons are checked here; a compressed ``counts`` string is only checked for its
    type and characters, its runs are validated in bulk by the caller (``validate_counts``).
    """
    if segm is None:
        return None
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise RLEError("RLE must have 'counts' and 'size'")
        _check_size(segm["size"], height, width)
        counts = segm["counts"]
        if isinstance(counts, list):
            _check_uncompressed(counts, height, width)
            return mask_utils.frPyObjects({"size": [int(height), int(width)], "counts": counts}, height, width)
        if isinstance(counts, (str, bytes)):
            return {"size": [height, width], "counts": counts_bytes(counts)}
        raise RLEError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")
    if isinstance(segm, list):
        polygons = [p for p in segm if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
        if not polygons:
            return None  # invalid polygons are dropped, as the official loaders do
        _check_polygons(polygons, height, width)
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    raise RLEError(f"segmentation must be an RLE dict, a polygon list or null, got {type(segm).__name__}")


def validate_normalized(rles: list[dict]) -> tuple[np.ndarray, list[str | None]]:
    """(areas, errors) of normalised RLEs (``normalize_segmentation`` output): every run checked in one batch."""
    return validate_counts([r["counts"] for r in rles], [(int(r["size"][0]), int(r["size"][1])) for r in rles])


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
