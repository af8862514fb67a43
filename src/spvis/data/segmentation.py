"""Per-frame segmentations of YTVIS/OVIS/COCO files: normalise to compressed RLE and validate.

A segmentation is a compressed RLE (``counts`` a string), an uncompressed RLE (``counts`` a list of
ints), a polygon list, or None (object absent). Everything is normalised to compressed RLE with
``bytes`` counts so pycocotools can decode it; validation parses the counts string itself, because
pycocotools does not check that the runs add up to H*W (a corrupt string decodes to garbage). Encoding,
decoding and areas are ``spvis.data.rle``'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spvis.data.rle import RLEError, compress_runs, counts_bytes, polygons_rle
from spvis.data.rle_batch import validate_counts

# Polygon vertices may lie a little outside the frame (COCO has some); beyond this fraction of a side per
# direction they are corrupt, and pycocotools' outline rasteriser would allocate memory in proportion.
POLYGON_MARGIN = 1.0
MAX_POLYGON_COORDS = 1_000_000
MAX_POLYGON_OUTLINE = 4_000_000  # summed outline length (pixels) of one segmentation's polygons: ~160 MB to rasterise


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
            return compress_runs(counts, height, width)
        if isinstance(counts, (str, bytes)):
            return {"size": [height, width], "counts": counts_bytes(counts)}
        raise RLEError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")
    if isinstance(segm, list):
        polygons = [p for p in segm if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
        if not polygons:
            return None  # invalid polygons are dropped, as the official loaders do
        _check_polygons(polygons, height, width)
        return polygons_rle(polygons, height, width)
    raise RLEError(f"segmentation must be an RLE dict, a polygon list or null, got {type(segm).__name__}")


def validate_normalized(rles: list[dict]) -> tuple[np.ndarray, list[str | None]]:
    """(areas, errors) of normalised RLEs (``normalize_segmentation`` output): every run checked in one batch."""
    return validate_counts([r["counts"] for r in rles], [(int(r["size"][0]), int(r["size"][1])) for r in rles])
