"""What every inference frame source is: lazy frames, a cut instead of an exception, and the max_frames cut.

Every source has ``.name``, ``.num_frames`` (None when a stream does not say), ``.height``, ``.width``,
``.fps`` (None for image folders) and iterates uint8 RGB frames (H, W, 3) one at a time, so a 2,000-frame
video is never held in memory. A video that breaks off mid-stream stops iterating and sets
``.truncated = True`` and ``.error`` (one line, naming the file); it never raises mid-stream: whether a cut video
is an error is the caller's choice (``spvis infer`` refuses it unless ``--allow-truncated``). A stream ended on
request (a live source's first Ctrl-C) is ``.truncated`` too, with ``.stopped = True``: cut short, not broken, so
it is not an error. A source with no readable frame at all raises ``SpvisError`` when it is opened.
``max_frames`` is applied here, at the source, for every kind (files and folders in ``spvis.data.frames``, live
streams in ``spvis.data.live``).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from spvis.errors import SpvisError


class FrameSource:
    """Common state of all sources (see module docstring); subclasses implement ``_frames``."""

    def __init__(self, name: str, num_frames: int | None, height: int, width: int, fps: float | None,
                 max_frames: int | None):
        if max_frames is not None and max_frames < 1:
            raise SpvisError(f"{name}: max_frames must be at least 1, got {max_frames}")
        self.name = name
        self.max_frames = max_frames
        if num_frames is not None and max_frames is not None:
            num_frames = min(num_frames, max_frames)
        self.num_frames = num_frames
        self.height, self.width, self.fps = int(height), int(width), fps
        self.cut: str | None = None  # why the source was cut short when opened (allow_truncated), else None
        self.truncated = False
        self.stopped = False  # ended on request (see the module docstring)
        self.error: str | None = None

    def _frames(self) -> Iterator[np.ndarray]:
        raise TypeError(f"{type(self).__name__} does not implement _frames")

    def __iter__(self) -> Iterator[np.ndarray]:
        self.truncated, self.error, self.stopped = self.cut is not None, self.cut, False
        for index, frame in enumerate(self._frames()):
            if self.max_frames is not None and index >= self.max_frames:
                return
            yield frame

    def __len__(self) -> int:
        if self.num_frames is None:
            raise TypeError(f"{self.name}: the number of frames is unknown until the stream is read")
        return self.num_frames

    def _stop(self, message: str) -> None:
        self.truncated, self.error = True, message
