"""Benchmark-server result files: write (json or server zip), load and validate (masks are encoded by
``spvis.data.rle.encode_masks``).

A result entry is ``{"video_id", "category_id" (dataset id), "score", "segmentations": [RLE or None] * T}``
with compressed RLE (``counts`` a string). The YouTube-VIS / OVIS servers take a zip holding
``results.json`` at its root.

Loading checks every entry against the GT and raises ``DataFormatError`` naming the file and the
entry (``result 12 (video 3)``) for: unknown video or category, wrong frame count, a malformed or
wrongly sized RLE, a non-finite score. An empty list is valid: every metric is then computed with
no predictions (AP 0 where GT exists), where the official loader crashes.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from spvis.data.rle import RLEError, counts_bytes
from spvis.data.rle_batch import validate_counts
from spvis.errors import DataFormatError
from spvis.evaluation.ground_truth import GroundTruth
from spvis.utils.atomic_io import atomic_write_bytes, atomic_write_json
from spvis.utils.json_io import parse_json, read_json

SERVER_JSON_NAME = "results.json"
# Uncompressed size budget of results.json inside a server zip (the YouTube-VIS 2021 valid results of a strong
# model are ~200 MB); deflate inflates up to ~1000x, so without it a 1.5 MB zip costs gigabytes.
MAX_ARCHIVE_MEMBER_BYTES = 1 << 30


def _json_ready(result: dict, index: int) -> dict:
    """One result entry with plain json types (str counts, float score, int ids)."""
    segs = []
    for s in result["segmentations"]:
        if s is None:
            segs.append(None)
            continue
        counts = s["counts"]
        segs.append({"size": [int(s["size"][0]), int(s["size"][1])],
                     "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts})
    score = float(result["score"])
    if not math.isfinite(score):
        raise ValueError(f"result {index}: score is {score}")
    return {"video_id": int(result["video_id"]), "category_id": int(result["category_id"]), "score": score,
            "segmentations": segs}


def json_ready_results(results: Iterable[dict]) -> list[dict]:
    """Result entries in plain json types, exactly as ``write_results`` stores them (infer's per-video log)."""
    return [_json_ready(r, i) for i, r in enumerate(results)]


def write_results(path: str | os.PathLike | None, results: Iterable[dict], *,
                  zip_path: str | os.PathLike | None = None) -> None:
    """Write results as json to ``path`` and/or as a server zip (``results.json`` at its root), atomically."""
    entries = json_ready_results(results)
    if path is not None:
        atomic_write_json(path, entries)
    if zip_path is not None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(SERVER_JSON_NAME, json.dumps(entries))
        atomic_write_bytes(zip_path, buffer.getvalue())


@dataclass
class ResultTrack:
    """One validated prediction: per-frame RLE (None where null) and per-frame mask areas."""

    index: int  # position in the file (official result id = index + 1)
    video_id: int
    category_id: int
    score: float
    rles: list[dict | None]
    frame_areas: np.ndarray  # (T,) int64, 0 for null or empty frames

    @property
    def avg_area(self) -> float:
        """Official result area: mean of the non-zero frame areas (0 if none)."""
        nonzero = self.frame_areas[self.frame_areas > 0]
        return float(nonzero.mean()) if len(nonzero) else 0.0


def _read_member(path: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    """The bytes of one archive member, refused beyond ``MAX_ARCHIVE_MEMBER_BYTES`` uncompressed: the declared size
    is checked first and the actual one while inflating (a declared size can lie), so a zip bomb costs nothing."""
    info = archive.getinfo(name)
    budget = f"more than the budget of {MAX_ARCHIVE_MEMBER_BYTES >> 20} MiB uncompressed (a zip bomb?)"
    if info.file_size > MAX_ARCHIVE_MEMBER_BYTES:
        raise DataFormatError(path, f"is {info.file_size:,} bytes, {budget}", field=name)
    chunks, total = [], 0
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            total += len(chunk)
            if total > MAX_ARCHIVE_MEMBER_BYTES:
                raise DataFormatError(path, f"inflates to {budget}", field=name)
            chunks.append(chunk)
    return b"".join(chunks)


def _read_results_file(path: Path) -> Any:
    if not path.is_file():
        raise DataFormatError(path, "results file not found")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                if SERVER_JSON_NAME not in archive.namelist():
                    raise DataFormatError(path, f"zip has no {SERVER_JSON_NAME} at its root")
                return parse_json(path, _read_member(path, archive, SERVER_JSON_NAME))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, RuntimeError,
                NotImplementedError) as exc:  # zlib.error: corrupt deflate data (fuzz suite)
            raise DataFormatError(path, f"unreadable zip ({' '.join(str(exc).split()) or type(exc).__name__})",
                                  field=SERVER_JSON_NAME) from None
    return read_json(path, what="results file")


def load_results(results: str | os.PathLike | list, gt: GroundTruth) -> list[ResultTrack]:
    """Validate a results file (json, server zip, or an in-memory list) against ``gt``; see module docstring."""
    if isinstance(results, (str, os.PathLike)):
        source = str(results)
        data = _read_results_file(Path(results))
    else:
        source, data = "<results list>", results
    if not isinstance(data, list):
        raise DataFormatError(source, "top level must be a list of {video_id, category_id, score, segmentations}")
    cat_ids = set(gt.category_ids)
    tracks: list[ResultTrack] = []
    pending: list[tuple[int, int, bytes]] = []  # (result, frame, counts) to validate in one batch
    for i, r in enumerate(data):
        entry = f"result {i}"
        if not isinstance(r, dict):
            raise DataFormatError(source, "must be an object", entry=entry)
        vid = r.get("video_id")
        if isinstance(vid, bool) or not isinstance(vid, int) or vid not in gt.video_index:
            raise DataFormatError(source, f"unknown video id {vid!r}", entry=entry, field="video_id")
        entry = f"result {i} (video {vid})"
        cid = r.get("category_id")
        if isinstance(cid, bool) or not isinstance(cid, int) or cid not in cat_ids:
            raise DataFormatError(source, f"unknown category id {cid!r}", entry=entry, field="category_id")
        score = r.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DataFormatError(source, f"must be a finite number, got {score!r}", entry=entry, field="score")
        video = gt.video_index[vid]
        segs = r.get("segmentations")
        if not isinstance(segs, list):
            raise DataFormatError(source, "must be a list (one entry per frame)", entry=entry, field="segmentations")
        if len(segs) != video.length:
            raise DataFormatError(source, f"has {len(segs)} frames but video {vid} has {video.length}", entry=entry,
                                  field="segmentations")
        rles: list[dict | None] = []
        for t, s in enumerate(segs):
            if s is None:
                rles.append(None)
                continue
            if not isinstance(s, dict) or "size" not in s or "counts" not in s:
                raise DataFormatError(source, f"frame {t}: must be a compressed RLE {{size, counts}} or null",
                                      entry=entry, field="segmentations")
            size = s["size"]
            if not isinstance(size, list) or [*size] != [video.height, video.width]:
                raise DataFormatError(source, f"frame {t}: mask size {size} differs from the video size "
                                      f"[{video.height}, {video.width}]", entry=entry, field="segmentations")
            counts = s["counts"]
            if not isinstance(counts, (str, bytes)):
                raise DataFormatError(source, f"frame {t}: 'counts' must be a compressed RLE string",
                                      entry=entry, field="segmentations")
            try:
                counts = counts_bytes(counts)
            except RLEError as exc:
                raise DataFormatError(source, f"frame {t}: {exc}", entry=entry, field="segmentations") from None
            rles.append({"size": [video.height, video.width], "counts": counts})
            pending.append((i, t, counts))
        tracks.append(ResultTrack(i, vid, cid, float(score), rles, np.zeros(video.length, dtype=np.int64)))
    sizes = [(gt.video_index[tracks[i].video_id].height, gt.video_index[tracks[i].video_id].width)
             for i, _, _ in pending]
    areas, errors = validate_counts([c for _, _, c in pending], sizes)
    for (i, t, _), area, error in zip(pending, areas.tolist(), errors):
        if error is not None:
            raise DataFormatError(source, f"frame {t}: {error}", entry=f"result {i} (video {tracks[i].video_id})",
                                  field="segmentations")
        tracks[i].frame_areas[t] = area
    return tracks
