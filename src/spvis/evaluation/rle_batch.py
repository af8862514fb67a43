"""Validate many compressed-RLE strings at once and get their run totals and foreground areas.

pycocotools never checks that a counts string adds up to H*W (a corrupt string decodes to garbage),
and parsing each string in Python costs ~1 ms for a 720p mask. Here every string of a results file
is parsed in one vectorised numpy pass (~100x faster), so validation is affordable on 100k masks.
Format (COCO maskApi ``rleFrString``): 6 bits a char (value = char - 48), bit 0x20 = "more chars
follow", the last char's bit 0x10 is the sign; run i >= 3 is stored as a delta to run i - 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ParsedCounts:
    """Per string: total pixels covered, foreground area, and an error message (None when valid)."""

    totals: np.ndarray  # (N,) int64
    areas: np.ndarray  # (N,) int64
    errors: list[str | None]


def _segmented_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` restarting wherever ``group`` changes (each group is contiguous)."""
    csum = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    offsets = np.repeat(csum[starts] - values[starts], np.diff(np.r_[starts, len(values)]))
    return csum - offsets


def parse_counts_batch(counts: list[bytes]) -> ParsedCounts:
    """Parse N compressed-RLE strings; strings that are malformed get an error message instead of numbers."""
    n = len(counts)
    totals = np.zeros(n, dtype=np.int64)
    areas = np.zeros(n, dtype=np.int64)
    errors: list[str | None] = [None] * n
    if n == 0:
        return ParsedCounts(totals, areas, errors)
    lengths = np.fromiter((len(c) for c in counts), dtype=np.int64, count=n)
    data = np.frombuffer(b"".join(counts), dtype=np.uint8).astype(np.int64) - 48
    string_of_char = np.repeat(np.arange(n), lengths)
    bad_char = (data < 0) | (data > 63)
    more = (data & 0x20) != 0
    ends_mid_run = np.zeros(n, dtype=bool)
    last_char = np.cumsum(lengths) - 1
    nonempty = lengths > 0
    ends_mid_run[nonempty] = more[last_char[nonempty]]
    has_bad_char = np.zeros(n, dtype=bool)
    if bad_char.any():
        has_bad_char[np.unique(string_of_char[bad_char])] = True
    bad_string = has_bad_char | ends_mid_run
    for i in np.flatnonzero(bad_string):
        errors[i] = "counts string has an invalid character" if has_bad_char[i] else \
            "counts string ends in the middle of a run"
    keep_char = ~bad_string[string_of_char]
    data, more, string_of_char = data[keep_char], more[keep_char], string_of_char[keep_char]
    if len(data) == 0:
        return ParsedCounts(totals, areas, errors)
    # a run starts at the first char of a string or after a char without the "more" bit
    first_of_string = np.r_[True, string_of_char[1:] != string_of_char[:-1]]
    run_start = first_of_string | np.r_[True, ~more[:-1]]
    run_of_char = np.cumsum(run_start) - 1
    starts = np.flatnonzero(run_start)
    shift_in_run = np.arange(len(data)) - starts[run_of_char]
    if shift_in_run.max(initial=0) > 12:
        raise ValueError("RLE run length needs more than 64 bits")
    contrib = (data & 0x1F) << (5 * shift_in_run)
    values = np.add.reduceat(contrib, starts)
    run_len_chars = np.diff(np.r_[starts, len(data)])
    last_of_run = starts + run_len_chars - 1
    negative = (data[last_of_run] & 0x10) != 0
    values[negative] -= np.left_shift(np.int64(1), 5 * run_len_chars[negative])
    run_string = string_of_char[starts]
    run_index = np.arange(len(starts)) - np.flatnonzero(np.r_[True, run_string[1:] != run_string[:-1]])[
        np.cumsum(np.r_[True, run_string[1:] != run_string[:-1]]) - 1]
    # runs 0, 1, 2 are absolute; run j >= 3 adds run j - 2: chains (j=0), (1,3,5,..), (2,4,6,..) per string
    absolute = values.copy()
    for parity, first in ((1, 1), (0, 2)):
        sel = np.flatnonzero((run_index % 2 == parity) & (run_index >= first))
        absolute[sel] = _segmented_cumsum(values[sel], run_string[sel])
    np.add.at(totals, run_string, absolute)
    np.add.at(areas, run_string, np.where(run_index % 2 == 1, absolute, 0))
    negative_runs = np.zeros(n, dtype=bool)
    negative_runs[run_string[absolute < 0]] = True
    for i in np.flatnonzero(negative_runs):
        errors[i] = "RLE has a negative run length"
    return ParsedCounts(totals, areas, errors)
