"""The one COCO RLE codec: batched encode, decode, area, box and IoU of compressed RLEs (pycocotools underneath).

Every place that turns masks into RLEs or back goes through here: the engines' per-frame encoders, the
benchmark result writer, the synthetic datasets, the GT loaders and the viewers. Two ``counts`` forms exist:
``bytes`` (what pycocotools returns and reads) and ``str`` (json-ready, what result files and our encoders
hand out); every function below reads either.

Layout: pycocotools encodes an (H, W, N) Fortran-ordered uint8 stack, i.e. each mask's pixels column-major.
``encode_column_major`` takes masks already laid out so ((N, W, H) C-contiguous: what the inference engines
produce on the device) and encodes them without a copy; the other encoders make that layout with one
transposing copy. Validation of foreign RLEs lives in ``spvis.data.segmentation`` and ``spvis.data.rle_batch``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils

# pycocotools 2.0.x ``area()`` on a list allocates its output with the dtype numpy infers from the list length;
# with numpy 2 a list of 256 or more RLEs raises OverflowError ("out of bounds for uint8"). Every area goes
# through the helpers below, which never hand it more than this many RLEs at once.
AREA_CHUNK = 128
# Below this many non-empty frames a thread pool costs ``encode_masks`` more than it saves.
_PARALLEL_MIN_FRAMES = 16


class RLEError(ValueError):
    """A segmentation cannot be decoded; the message says why (the caller adds file and ids)."""


def counts_bytes(counts: str | bytes) -> bytes:
    """The compressed-RLE ``counts`` as bytes; RLEError for a character outside ASCII (never a valid run char)."""
    if isinstance(counts, bytes):
        return counts
    try:
        return counts.encode("ascii")
    except UnicodeEncodeError as exc:
        raise RLEError(f"counts string has a non-ASCII character {counts[exc.start]!r} at offset {exc.start}") \
            from None


def _json_counts(rles: list[dict]) -> list[dict]:
    """The same RLE dicts with their bytes ``counts`` turned into str (json-ready), in place."""
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def _as_bytes_rle(rle: dict) -> dict:
    """An RLE pycocotools reads: ``counts`` as bytes (a str one is ASCII-encoded), the size as given."""
    counts = rle["counts"]
    return rle if isinstance(counts, bytes) else {"size": rle["size"], "counts": counts_bytes(counts)}


# ---------------------------------------------------------------------------------------------------- encode


def encode_column_major(masks: np.ndarray) -> list[dict]:
    """Compressed RLEs (json-ready str counts) of bool or uint8 (N, W, H) C-contiguous masks, i.e. each mask's
    pixels in column-major order, the layout pycocotools reads: one call, no copy."""
    if masks.shape[0] == 0:
        return []
    if masks.dtype == np.bool_:
        as_u8 = masks.view(np.uint8)
    else:
        as_u8 = masks if masks.dtype == np.uint8 else masks.astype(np.uint8)
    return _json_counts(mask_utils.encode(np.asfortranarray(as_u8.transpose(2, 1, 0))))  # (H, W, N) F: a view


def encode_frame_masks(masks: np.ndarray) -> list[dict]:
    """Compressed RLEs (json-ready str counts) of bool or uint8 (N, H, W) masks, encoded in one pycocotools call.

    A (N, H, W) C-ordered stack costs one transposing copy; a transposed view of a contiguous (N, W, H) array
    (``x.transpose(0, 2, 1)``) costs none."""
    return encode_column_major(np.ascontiguousarray(masks.transpose(0, 2, 1)))


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed RLE (json-ready str counts) of one (H, W) mask (non-bool values cast to uint8)."""
    mask = np.asarray(mask)
    return encode_frame_masks(mask[None] if mask.dtype in (np.bool_, np.uint8) else mask.astype(np.uint8)[None])[0]


def encode_masks(masks: Any, *, num_threads: int | None = None) -> list[dict | None]:
    """Per-frame compressed RLE of bool (T, H, W) masks (numpy or torch); frames with an empty mask give None.

    Only non-empty frames are encoded. With ``num_threads`` > 1 the frames are encoded in chunks on a thread
    pool: pycocotools holds the GIL while encoding but numpy's transposing copy releases it, so one chunk's
    copy overlaps another's encode. The default uses threads only for stacks of 16+ non-empty frames.
    """
    if hasattr(masks, "detach"):  # torch tensor
        masks = masks.detach().to("cpu").numpy()
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"encode_masks expects (T, H, W) masks, got shape {masks.shape}")
    if masks.dtype != np.bool_ and masks.dtype != np.uint8:
        masks = masks > 0
    num_frames = masks.shape[0]
    out: list[dict | None] = [None] * num_frames
    nonempty = np.flatnonzero(masks.reshape(num_frames, -1).any(axis=1))
    if len(nonempty) == 0:
        return out
    if num_threads is None:
        num_threads = min(4, os.cpu_count() or 1) if len(nonempty) >= _PARALLEL_MIN_FRAMES else 1
    chunks = np.array_split(nonempty, max(1, min(num_threads, len(nonempty))))

    def encode_chunk(frames: np.ndarray) -> list[dict]:
        return encode_frame_masks(masks[frames] if len(frames) != num_frames else masks)

    if len(chunks) == 1:
        encoded = [encode_chunk(chunks[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            encoded = list(pool.map(encode_chunk, chunks))
    for frames, rles in zip(chunks, encoded):
        for t, rle in zip(frames, rles):
            out[int(t)] = rle
    return out


def compress_runs(runs: list[int], height: int, width: int) -> dict:
    """Compressed RLE (bytes counts) of uncompressed run lengths (column-major, background first)."""
    return mask_utils.frPyObjects({"size": [int(height), int(width)], "counts": runs}, height, width)


def runs_rle(runs: list[int], height: int, width: int) -> dict:
    """Compressed RLE (json-ready str counts) of uncompressed run lengths: masks written from their runs."""
    return _json_counts([compress_runs(runs, height, width)])[0]


def polygons_rle(polygons: list[list[float]], height: int, width: int) -> dict:
    """Compressed RLE (bytes counts) of the union of COCO polygons [x0, y0, x1, y1, ...] (checked by the caller:
    pycocotools allocates along each outline)."""
    return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))


# ---------------------------------------------------------------------------------------------------- decode


def decode_rle(rle: dict) -> np.ndarray:
    """Bool (H, W) mask of a compressed RLE (str or bytes counts)."""
    return mask_utils.decode(_as_bytes_rle(rle)).astype(bool)


def decode_rles(rles: Sequence[dict | None], height: int, width: int) -> np.ndarray:
    """Bool (N, H, W) masks of compressed RLEs of (height, width) frames; a None entry gives an empty mask."""
    out = np.zeros((len(rles), height, width), dtype=bool)
    present = [k for k, rle in enumerate(rles) if rle is not None]
    if present:
        stack = mask_utils.decode([_as_bytes_rle(rles[k]) for k in present])  # (H, W, n) uint8
        out[present] = stack.transpose(2, 0, 1).astype(bool)
    return out


# ---------------------------------------------------------------------------------------------------- measure


def rle_areas(rles: list[dict]) -> np.ndarray:
    """Foreground pixel counts (int64 (N,)) of compressed RLEs, any N (chunked under pycocotools' limit)."""
    out = np.zeros(len(rles), dtype=np.int64)
    for start in range(0, len(rles), AREA_CHUNK):
        out[start:start + AREA_CHUNK] = mask_utils.area(list(rles[start:start + AREA_CHUNK]))
    return out


def rle_area(rle: dict) -> int:
    """Foreground pixel count of one compressed RLE (a single dict: pycocotools' scalar path, no list)."""
    return int(mask_utils.area(rle))


def rle_bbox(rle: dict) -> list[float]:
    """[x, y, w, h] box of a compressed RLE."""
    return [float(v) for v in mask_utils.toBbox(rle)]


def rle_ious(rles_a: list[dict], rles_b: list[dict]) -> np.ndarray:
    """float64 (len(a), len(b)) mask IoUs of two lists of compressed RLEs of one frame size (no crowd regions),
    in one pycocotools call."""
    ious = mask_utils.iou(rles_a, rles_b, [0] * len(rles_b))
    return np.asarray(ious, dtype=np.float64).reshape(len(rles_a), len(rles_b))


def rle_intersection_area(rle_a: dict, rle_b: dict) -> int:
    """Pixels two compressed RLEs share (merge with intersect + area: cheaper than ``rle_ious`` for one pair)."""
    return rle_area(mask_utils.merge([rle_a, rle_b], True))
