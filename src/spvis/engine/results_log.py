"""``OUT/results.jsonl``: one line per finished video, appended and fsynced as soon as that video is done.

``spvis infer`` writes ``{"video_id": ..., "entries": [...]}`` (the video's results.json entries) after each
video, so an error or a kill in video k keeps videos 1..k-1 on disk. ``--resume`` reads the log back, skips
the videos it holds and cuts off a last line that a kill left half-written. results.json is made from the
log only when every video is done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spvis.errors import DataFormatError, OutputError

RESULTS_LOG_NAME = "results.jsonl"


class ResultsLog:
    """The per-video results log of one ``spvis infer`` output folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.dropped_partial_line = False  # set by read(): a cut-off last line was removed

    def read(self) -> dict[int, list[dict]]:
        """Entries per video id, in file order; a half-written last line is truncated away (not an error)."""
        if not self.path.is_file():
            return {}
        data = self.path.read_bytes()
        done: dict[int, list[dict]] = {}
        start, number = 0, 0
        while start < len(data):
            end = data.find(b"\n", start)
            number += 1
            record = _parse_line(data[start:] if end < 0 else data[start:end])
            if end < 0 or (record is None and end == len(data) - 1):
                self._truncate(start)  # the kill came while this line was being written
                break
            if record is None:
                raise DataFormatError(self.path, "not a {\"video_id\", \"entries\"} object; the log is damaged, "
                                                 "rerun with --exist-ok", entry=f"line {number}")
            if record[0] in done:
                raise DataFormatError(self.path, f"video {record[0]} appears twice; rerun with --exist-ok",
                                      entry=f"line {number}")
            done[record[0]] = record[1]
            start = end + 1
        return done

    def append(self, video_id: int, entries: list[dict]) -> None:
        """Add one video's entries as one line, flushed and fsynced before returning."""
        line = json.dumps({"video_id": int(video_id), "entries": entries}) + "\n"
        created = not self.path.exists()
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            if created:
                _fsync_folder(self.path.parent)  # the new file's name survives a crash too
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot append the results of video {video_id} "
                              f"({exc.strerror or exc})") from None

    def _truncate(self, size: int) -> None:
        with open(self.path, "r+b") as handle:
            handle.truncate(size)
            os.fsync(handle.fileno())
        self.dropped_partial_line = True


def _parse_line(raw: bytes) -> tuple[int, list[dict]] | None:
    """(video id, entries) of one log line, or None when it is not a complete, well-formed record."""
    try:
        record = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    if not isinstance(record, dict) or not isinstance(record.get("entries"), list):
        return None
    video_id = record.get("video_id")
    if not isinstance(video_id, int) or isinstance(video_id, bool):
        return None
    return video_id, record["entries"]


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
