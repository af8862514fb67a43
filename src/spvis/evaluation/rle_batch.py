"""Validate many compressed-RLE strings at once and get their run totals and foreground areas.

pycocotools never checks that a counts string adds up to H*W, and a short string can even make its
``iou`` loop forever; parsing each string in Python costs ~1 ms for a 720p mask. Here the strings of a
whole results file are parsed with vectorised numpy in chunks of a few million characters.
Format (COCO maskApi ``rleFrString``): 6 bits a char (value = char - 48), bit 0x20 = "more chars
follow", the last char's bit 0x10 is the sign; run i >= 3 is stored as a delta to run i - 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

_CHUNK_CHARS = 1 << 22  # ~4M chars per vectorised pass keeps the per-run arrays in cache-sized pieces


@dataclass
class ParsedCounts:
    """Per string: total pixels covered, foreground area, and an error message (None when valid)."""

    totals: np.ndarray  # (N,) int64
    areas: np.ndarray  # (N,) int64
    errors: list[str | None]
    run_lengths: np.ndarray | None = None  # (R,) int64 absolute runs of all strings back to back (when asked for)
    run_offsets: np.ndarray | None = None  # (N + 1,) string i owns run_lengths[run_offsets[i]:run_offsets[i + 1]]


def _parse_chunk(counts: list[bytes], totals: np.ndarray, areas: np.ndarray, errors: list[str | None],
                 runs_out: list | None = None) -> None:
    """Fill totals / areas / errors (views of the caller's arrays), and runs_out if given, for one chunk."""
    n = len(counts)
    lengths = np.fromiter((len(c) for c in counts), dtype=np.int64, count=n)
    raw = np.frombuffer(b"".join(counts), dtype=np.uint8)
    if len(raw) == 0:
        if runs_out is not None:
            runs_out.append((np.zeros(0, dtype=np.int64), np.zeros(n, dtype=np.int64)))
        return
    string_end = np.cumsum(lengths)  # exclusive end of each string
    bad_char = (raw < 48) | (raw > 111)
    if bad_char.any():
        for i in np.unique(np.searchsorted(string_end, np.flatnonzero(bad_char), side="right")):
            errors[i] = "counts string has an invalid character"
    payload = (raw - 48).astype(np.uint8)  # 0..63 on valid chars
    run_end = (payload & 0x20) == 0
    nonempty = lengths > 0
    last = string_end[nonempty] - 1
    for i in np.flatnonzero(nonempty)[~run_end[last]]:
        errors[i] = errors[i] or "counts string ends in the middle of a run"
    run_end[last] = True  # keep runs from spilling into the next string whatever its state
    ends = np.flatnonzero(run_end)  # (R,) index of each run's last char
    starts = np.r_[0, ends[:-1] + 1]
    run_chars = ends - starts + 1  # (R,)
    if run_chars.max(initial=0) > 12:
        for i in np.unique(np.searchsorted(string_end, ends[run_chars > 12], side="right")):
            errors[i] = errors[i] or "counts string has a run longer than 64 bits"
        run_chars = np.minimum(run_chars, 12)
    last_payload = payload[ends]
    values = (last_payload & 0x1F).astype(np.int64)  # most runs are one char (small deltas)
    multi = np.flatnonzero(run_chars > 1)
    if len(multi):
        multi_chars, multi_starts = run_chars[multi], starts[multi]
        assembled = np.zeros(len(multi), dtype=np.int64)
        for k in range(int(multi_chars.max())):
            has = multi_chars > k
            assembled[has] |= (payload[multi_starts[has] + k].astype(np.int64) & 0x1F) << (5 * k)
        values[multi] = assembled
    negative = np.flatnonzero(last_payload & 0x10)
    values[negative] -= np.left_shift(np.int64(1), 5 * run_chars[negative])
    runs_per_string = np.diff(np.r_[0, np.searchsorted(ends, string_end - 1, side="right")])
    first_run = np.r_[0, np.cumsum(runs_per_string)[:-1]]
    run_index = np.arange(len(ends)) - np.repeat(first_run, runs_per_string)
    # runs 0, 1, 2 are absolute; run j >= 3 adds run j - 2: per string, a running sum over the odd
    # runs (1, 3, 5, ..) and one over the even runs from 2 (2, 4, 6, ..)
    odd = (run_index & 1) == 1
    even_chain = ~odd & (run_index >= 2)
    absolute = values.copy()
    for chain in (odd, even_chain):
        csum = np.cumsum(np.where(chain, values, 0))
        before = np.where(first_run > 0, csum[np.maximum(first_run - 1, 0)], 0)  # sums of earlier strings
        absolute[chain] = (csum - np.repeat(before, runs_per_string))[chain]
    has_runs = runs_per_string > 0
    totals[has_runs] = np.add.reduceat(absolute, first_run[has_runs])
    areas[has_runs] = np.add.reduceat(np.where(odd, absolute, 0), first_run[has_runs])
    if (absolute < 0).any():
        for i in np.unique(np.repeat(np.arange(n), runs_per_string)[absolute < 0]):
            errors[i] = errors[i] or "RLE has a negative run length"
    if runs_out is not None:
        runs_out.append((absolute, runs_per_string))


def parse_counts_batch(counts: list[bytes], *, keep_runs: bool = False) -> ParsedCounts:
    """Parse N compressed-RLE strings; a malformed string gets an error message (its numbers are meaningless)."""
    n = len(counts)
    totals = np.zeros(n, dtype=np.int64)
    areas = np.zeros(n, dtype=np.int64)
    errors: list[str | None] = [None] * n
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    begin, chars = 0, 0
    for i, c in enumerate(counts):
        chars += len(c)
        if chars >= _CHUNK_CHARS or i == n - 1:
            chunk_errors = errors[begin:i + 1]
            _parse_chunk(counts[begin:i + 1], totals[begin:i + 1], areas[begin:i + 1], chunk_errors,
                         chunks if keep_runs else None)
            errors[begin:i + 1] = chunk_errors
            begin, chars = i + 1, 0
    parsed = ParsedCounts(totals, areas, errors)
    if keep_runs:
        parsed.run_lengths = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        per_string = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        parsed.run_offsets = np.r_[0, np.cumsum(per_string)]
    return parsed


def stacked_video_rles(parsed: ParsedCounts, string_track: np.ndarray, string_frame: np.ndarray,
                       frame_sizes: np.ndarray, num_frames: np.ndarray) -> list[dict]:
    """Per track one compressed RLE of size (T * H * W, 1) holding its frames back to back.

    Column-major order of an (H, W) frame is its RLE order, so concatenating the frames makes the mask
    IoU of two stacked tracks equal their spatio-temporal IoU (sum of intersections over sum of unions);
    absent frames are background. ``parsed`` must hold runs (``keep_runs``); its strings are grouped by
    track in frame order: string i is frame ``string_frame[i]`` of track ``string_track[i]``;
    ``frame_sizes`` / ``num_frames`` (per track) give H * W and T. Foreground runs that touch across a
    frame boundary are merged (pycocotools' ``iou`` stops early on zero-length interior runs).
    """
    runs, offsets = parsed.run_lengths, parsed.run_offsets
    num_tracks = len(frame_sizes)
    string_of_run = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    ends = np.cumsum(runs)
    ends -= np.repeat(np.r_[0, ends][offsets[:-1]], np.diff(offsets))  # per-string cumulative ends
    run_index = np.arange(len(runs)) - offsets[:-1][string_of_run]
    fg = np.flatnonzero(((run_index & 1) == 1) & (runs > 0))  # foreground runs with pixels
    track = string_track[string_of_run[fg]]
    shift = string_frame[string_of_run[fg]] * frame_sizes[track]
    fg_end = ends[fg] + shift
    fg_start = fg_end - runs[fg]
    touching = (fg_start[1:] == fg_end[:-1]) & (track[1:] == track[:-1])
    keep_start = np.r_[True, ~touching][:len(fg)]
    keep_end = np.r_[~touching, True][:len(fg)]
    starts, stops, start_track = fg_start[keep_start], fg_end[keep_end], track[keep_start]
    edges = np.empty(2 * len(starts), dtype=np.int64)
    edges[0::2], edges[1::2] = starts, stops
    bounds = np.searchsorted(start_track, np.arange(num_tracks + 1)) * 2
    totals = frame_sizes * num_frames
    out = []
    for k in range(num_tracks):
        counts = np.diff(np.r_[0, edges[bounds[k]:bounds[k + 1]], totals[k]])
        out.append(mask_utils.frPyObjects({"size": [int(totals[k]), 1], "counts": counts.astype(np.uint32)},
                                          int(totals[k]), 1))
    return out
