"""Validate many compressed-RLE strings at once and get their run totals and foreground areas.

pycocotools never checks that a counts string adds up to H*W, and a string that is too short or too
long makes its ``iou`` / ``merge`` loops spin forever; parsing each string in Python costs ~1 ms for a
720p mask. Here the strings of a whole results file are parsed with vectorised numpy, in chunks of a
few million characters spread over a thread pool (numpy releases the GIL). This is the one RLE validator:
the results side (``spvis.evaluation.results_io``), the ground-truth loaders (``spvis.data.ytvis``, ``.coco``,
``spvis.evaluation.ground_truth``) and ``spvis data check`` all go through ``validate_counts``.
Format (COCO maskApi ``rleFrString``): 6 bits a char (value = char - 48), bit 0x20 = "more chars
follow", the last char's bit 0x10 is the sign; run j >= 3 is stored as a delta to run j - 2.
Totals and areas need no per-run prefix sums: with n runs, the value stored for odd run j = 2k + 1
enters the absolute lengths of runs j, j + 2, ... (n // 2 - k of them), and the value of even run
j = 2k >= 2 enters (n - 1) // 2 - k + 1 of them; run 0 counts once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

_CHUNK_CHARS = 1 << 21  # ~2M chars per vectorised pass keeps the per-run arrays cache-sized
_MAX_RUN_CHARS = 12  # 12 chars x 5 bits already exceed any int64 run length
# No run can be longer than a whole frame of the size budget (spvis.data.png_io.MAX_PIXELS); bounding every run
# also keeps the int64 sums of a hostile string from wrapping around to a plausible total.
MAX_RUN_PIXELS = 1 << 31


@dataclass
class ParsedCounts:
    """Per string: total pixels covered, foreground area, and an error message (None when valid)."""

    totals: np.ndarray  # (N,) int64
    areas: np.ndarray  # (N,) int64
    errors: list[str | None]


def _parse_chunk(counts: list[bytes]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(totals, areas, {string index: error}) of one chunk of strings."""
    n = len(counts)
    totals = np.zeros(n, dtype=np.int64)
    areas = np.zeros(n, dtype=np.int64)
    errors: dict[int, str] = {}
    lengths = np.fromiter((len(c) for c in counts), dtype=np.int64, count=n)
    raw = np.frombuffer(b"".join(counts), dtype=np.uint8)
    if len(raw) == 0:
        return totals, areas, errors
    string_end = np.cumsum(lengths)  # exclusive end of each string
    bad_char = (raw < 48) | (raw > 111)
    if bad_char.any():
        for i in np.unique(np.searchsorted(string_end, np.flatnonzero(bad_char), side="right")):
            errors[int(i)] = "counts string has an invalid character"
    payload = raw - np.uint8(48)  # 0..63 on valid chars
    run_end = (payload & 0x20) == 0
    nonempty = lengths > 0
    last = string_end[nonempty] - 1
    for i in np.flatnonzero(nonempty)[~run_end[last]]:
        errors.setdefault(int(i), "counts string ends in the middle of a run")
    run_end[last] = True  # keep runs from spilling into the next string whatever its state
    ends = np.flatnonzero(run_end)  # (R,) index of each run's last char
    run_chars = np.diff(ends, prepend=-1)  # (R,) chars per run
    last_payload = payload[ends]
    values = (last_payload & 0x1F).astype(np.int64)  # most runs are one char (small deltas)
    multi = np.flatnonzero(run_chars > 1)
    if len(multi):
        too_long = run_chars[multi] > _MAX_RUN_CHARS
        if too_long.any():
            for i in np.unique(np.searchsorted(string_end, ends[multi[too_long]], side="right")):
                errors.setdefault(int(i), "counts string has a run longer than 64 bits")
        multi_chars = np.minimum(run_chars[multi], _MAX_RUN_CHARS)
        multi_starts = ends[multi] - run_chars[multi] + 1
        assembled = np.zeros(len(multi), dtype=np.int64)
        for k in range(int(multi_chars.max())):
            has = multi_chars > k
            assembled[has] |= (payload[multi_starts[has] + k].astype(np.int64) & 0x1F) << (5 * k)
        values[multi] = assembled
        negative_multi = (last_payload[multi] & 0x10) != 0
        values[multi[negative_multi]] -= np.left_shift(np.int64(1), 5 * multi_chars[negative_multi])
    single_negative = (run_chars == 1) & ((last_payload & 0x10) != 0)
    values[single_negative] -= 32
    runs_per_string = np.diff(np.searchsorted(ends, string_end - 1, side="right"), prepend=0)
    first_run = np.cumsum(runs_per_string) - runs_per_string
    run_index = np.arange(len(ends)) - np.repeat(first_run, runs_per_string)  # j
    runs_here = np.repeat(runs_per_string, runs_per_string)  # n
    odd = (run_index & 1).astype(bool)
    # how many absolute run lengths each stored value enters (see module docstring)
    weight = np.where(odd, runs_here // 2 - (run_index >> 1), (runs_here - 1) // 2 - (run_index >> 1) + 1)
    weight[run_index == 0] = 1
    # absolute run lengths: run j >= 3 is value j plus run j - 2, i.e. a per-string cumulative sum over the odd
    # runs (1, 3, ...) and one over the even runs from 2 (2, 4, ...); run 0 is its own value
    before_string = np.repeat(first_run, runs_per_string)

    def per_string_cumsum(x: np.ndarray) -> np.ndarray:
        total = np.concatenate(([0], np.cumsum(x)))
        return total[1:] - total[before_string]

    absolute = np.where(run_index == 0, values,
                        np.where(odd, per_string_cumsum(np.where(odd, values, 0)),
                                 per_string_cumsum(np.where(~odd & (run_index >= 2), values, 0))))
    for message, bad_run in (("RLE has a negative run length", absolute < 0),
                             (f"RLE has a run longer than {MAX_RUN_PIXELS:,} pixels", absolute > MAX_RUN_PIXELS)):
        if bad_run.any():
            for i in np.unique(np.searchsorted(string_end, ends[bad_run], side="right")):
                errors.setdefault(int(i), message)
    weighted = values * weight
    has_runs = runs_per_string > 0
    totals[has_runs] = np.add.reduceat(weighted, first_run[has_runs])
    areas[has_runs] = np.add.reduceat(np.where(odd, weighted, 0), first_run[has_runs])
    return totals, areas, errors


def parse_counts_batch(counts: list[bytes], *, num_threads: int | None = None) -> ParsedCounts:
    """Parse N compressed-RLE strings; a malformed string gets an error message (its numbers are meaningless)."""
    n = len(counts)
    bounds, chars = [0], 0
    for i, c in enumerate(counts):
        chars += len(c)
        if chars >= _CHUNK_CHARS and i + 1 < n:
            bounds.append(i + 1)
            chars = 0
    bounds.append(n)
    chunks = [counts[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    workers = min(len(chunks), num_threads or os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_parse_chunk, chunks))
    else:
        parts = [_parse_chunk(c) for c in chunks]
    errors: list[str | None] = [None] * n
    for start, (_, _, chunk_errors) in zip(bounds, parts):
        for i, message in chunk_errors.items():
            errors[start + i] = message
    totals = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    areas = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    return ParsedCounts(totals, areas, errors)


def validate_counts(counts: list[bytes], sizes: list[tuple[int, int]]) -> tuple[np.ndarray, list[str | None]]:
    """(foreground areas (N,) int64, per-string error or None) of compressed-RLE strings; string i must cover a
    ``sizes[i]`` = (height, width) frame exactly. Bad characters, a truncated run, a negative or oversized run
    and a wrong total are all errors (pycocotools would loop forever or decode garbage on them)."""
    parsed = parse_counts_batch(counts)
    errors = list(parsed.errors)
    for i, (total, (height, width)) in enumerate(zip(parsed.totals.tolist(), sizes)):
        if errors[i] is None and total != height * width:
            errors[i] = f"RLE runs cover {total} pixels, expected {height}x{width}={height * width}"
    return parsed.areas, errors
