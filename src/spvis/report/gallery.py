"""Thumbnails of the worst videos: a few frames each, chosen where the errors are, with outlines drawn.

Frames are picked in this order until ``max_frames`` are found: ID-switch frames, the first missed frame
of each partly or fully missed GT track, the first frame of each false track, then evenly spaced frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spvis.report.analysis import VideoAnalysis
from spvis.report.coverage import COVER_MISSED
from spvis.report.svg import colour_of
from spvis.report.thumbnails import thumbnail_data_uri


@dataclass(frozen=True)
class Thumbnail:
    """One frame of a worst video, ready for an <img>."""

    frame: int
    data_uri: str
    why: str  # "ID switch", "missed GT", "false track" or "" for a filler frame
    missing_file: str | None = None  # the frame path when the image could not be read (grey tile instead)


def pick_frames(va: VideoAnalysis, max_frames: int = 4) -> list[tuple[int, str]]:
    """Up to ``max_frames`` (frame, reason) of one video, sorted by frame (see module docstring)."""
    chosen: dict[int, str] = {}

    def add(t: int, why: str) -> None:
        if len(chosen) < max_frames and t not in chosen:
            chosen[t] = why

    for tl in va.timelines:
        for t in tl.switch_frames:
            add(t, "ID switch")
    for tl in va.timelines:
        missed = np.flatnonzero(tl.covering == COVER_MISSED)
        if len(missed):
            add(int(missed[0]), "missed GT")
    by_index = {r.index: r for r in va.kept}
    for ft in va.false:
        add(int(np.flatnonzero(by_index[ft.result_index].frame_areas)[0]), "false track")
    for t in np.linspace(0, va.video.length - 1, max_frames).round().astype(int).tolist():
        add(t, "")
    return sorted(chosen.items())


def video_thumbnails(va: VideoAnalysis, file_names: list[str], image_root: Path, *,
                     max_frames: int = 4) -> list[Thumbnail]:
    """Thumbnails of the picked frames of one video: GT dashed white, counted predictions in timeline colours."""
    colours = {r.index: colour_of(rank) for rank, r in enumerate(va.kept)}
    out = []
    for t, why in pick_frames(va, max_frames):
        path = image_root / file_names[t]
        masks = dict(height=va.video.height, width=va.video.width,
                     gt_rles=[g.rles[t] for g in va.gt_tracks if g.rles[t] is not None],
                     pred_rles=[(r.rles[t], colours[r.index]) for r in va.kept if r.frame_areas[t] > 0])
        try:
            out.append(Thumbnail(t, thumbnail_data_uri(path, **masks), why))
        except OSError:  # missing or unreadable frame: a grey tile with the outlines, and the path named
            out.append(Thumbnail(t, thumbnail_data_uri(None, **masks), why, str(path)))
    return out
