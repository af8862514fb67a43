"""What every inference frame source is: lazy frames, a cut instead of an exception, and the max_frames cut.

Every source has ``.name``, ``.num_frames`` (None when a stream does not say), ``.height``, ``.width``,
``.fps`` (None for image folders) and iterates uint8 RGB frames (H, W, 3) one at a time, so a 2,000-frame
video is never held in memory. A video that breaks off mid-stream stops iterating and sets
``.truncated = True`` and ``.error`` (one line, naming the file); it never raises mid-stream: whether a cut video
is an error is the caller's choice (``spvis infer`` refuses it unless ``--allow-truncated``). A stream ended on
request (a live source's first Ctrl-C) is ``.truncated`` too, with ``.stopped = True``: cut short, not broken, so
it is not an error. A source with no readable frame at all raises ``SpvisError`` when it is opened.
``max_frames`` is applied here and nowhere else: a source opened with it (files and folders in
``spvis.data.frames``, live streams in ``spvis.data.live``) stops after that many frames without reading the next
one, and ``limit_frames`` cuts any other frame iterable (a caller's arrays) or an open source the same way.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Iterable, Iterator

import numpy as np

from spvis.errors import SpvisError


class FrameSource:
    """Common state of all sources (see module docstring); subclasses implement ``_frames``."""

    def __init__(self, name: str, num_frames: int | None, height: int, width: int, fps: float | None,
                 max_frames: int | None):
        self.name = name
        self.max_frames: int | None = None
        self.num_frames = num_frames
        self.height, self.width, self.fps = int(height), int(width), fps
        self.cut: str | None = None  # why the source was cut short when opened (allow_truncated), else None
        self.truncated = False
        self.stopped = False  # ended on request (see the module docstring)
        self.error: str | None = None
        self.limit(max_frames)

    def limit(self, max_frames: int | None) -> "FrameSource":
        """Cut this source to its first ``max_frames`` frames as well (None: as it is); returns it."""
        if max_frames is None:
            return self
        if max_frames < 1:
            raise SpvisError(f"{self.name}: max_frames must be at least 1, got {max_frames}")
        self.max_frames = max_frames if self.max_frames is None else min(self.max_frames, max_frames)
        if self.num_frames is not None:
            self.num_frames = min(self.num_frames, self.max_frames)
        return self

    def _frames(self) -> Iterator[np.ndarray]:
        raise TypeError(f"{type(self).__name__} does not implement _frames")

    def __iter__(self) -> Iterator[np.ndarray]:
        self.truncated, self.error, self.stopped = self.cut is not None, self.cut, False
        frames = self._frames()
        # islice stops after the last wanted frame without asking for the next: nothing beyond it is decoded, and a
        # break just after the cut does not mark the source truncated
        yield from frames if self.max_frames is None else islice(frames, self.max_frames)

    def __len__(self) -> int:
        if self.num_frames is None:
            raise TypeError(f"{self.name}: the number of frames is unknown until the stream is read")
        return self.num_frames

    def _stop(self, message: str) -> None:
        self.truncated, self.error = True, message


class LimitedFrames:
    """Any frame iterable cut to its first ``limit`` frames: re-iterable when the iterable is (the offline engine
    reads a video twice), other attributes (``truncated``, ``error``, ...) read through to it."""

    def __init__(self, frames: Iterable[np.ndarray], limit: int):
        self._frames, self._limit = frames, limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._frames, name)

    @property
    def num_frames(self) -> int:
        """The limit, or the iterable's own ``num_frames`` when that is smaller."""
        known = getattr(self._frames, "num_frames", None)
        return self._limit if known is None else min(known, self._limit)

    def __iter__(self) -> Iterator[np.ndarray]:
        return islice(iter(self._frames), self._limit)


def limit_frames(frames: Iterable[np.ndarray], max_frames: int | None) -> Iterable[np.ndarray]:
    """``frames`` cut to its first ``max_frames`` (None: unchanged): a FrameSource is limited in place
    (``FrameSource.limit``), any other iterable is wrapped in ``LimitedFrames``."""
    if max_frames is None:
        return frames
    if isinstance(frames, FrameSource):
        return frames.limit(max_frames)
    return LimitedFrames(frames, max_frames)
