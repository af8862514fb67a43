"""Live and remote video: ``rtsp://``, ``rtmp://``, ``http(s)://...`` and ``webcam:N``, decoded by PyAV.

A live stream (rtsp / rtmp / webcam) that drops is reopened, at most ``RECONNECTS`` times with a growing
pause, then it ends with ``truncated`` set and a one-line ``error``, as a truncated file does (``spvis infer``
refuses it unless ``--allow-truncated``, which keeps the frames read so far). An http(s) file is not reopened (it
would start again from its first frame). ``request_stop()`` (Ctrl-C in ``spvis infer``: ``stop_live_on_sigint``)
ends the stream after the current frame with ``stopped`` set as well: the video asked to end is not broken, so the
results so far are written; a second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import signal
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

import numpy as np

from spvis.data.frame_source import FrameSource
from spvis.errors import SpvisError, one_line

LIVE_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "webcam:")
RECONNECTS = 3  # reopen attempts of a dropped live stream
BACKOFF_S = 1.0  # pause before the first reopen; doubled after each failure
OPEN_TIMEOUT_US = 10_000_000  # PyAV/ffmpeg socket timeout: a silent server fails in 10 s, not never

_active: "weakref.WeakSet[LiveSource]" = weakref.WeakSet()


def is_live(text: Any) -> bool:
    """Whether ``text`` names a live or remote source (not a local path)."""
    return isinstance(text, str) and text.lower().startswith(LIVE_SCHEMES)


def live_name(url: str) -> str:
    """A file-name-safe name for a URL or webcam (the overlay's and the results' video name)."""
    if url.lower().startswith("webcam:"):
        return f"webcam{url.split(':', 1)[1] or '0'}"
    parts = urlsplit(url)
    stem = (parts.path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]) or parts.hostname or "stream"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


class LiveSource(FrameSource):
    """Frames of a URL or webcam (see the module docstring); size and fps come from its first frame."""

    def __init__(self, url: str, max_frames: int | None = None):
        self.url = url
        self.live = not url.lower().startswith(("http://", "https://"))
        self._stop_requested = False
        container, first = self._open_first()
        with container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            num = (int(stream.frames) or None) if not self.live else None
        super().__init__(live_name(url), num, first.height, first.width, fps, max_frames)
        _active.add(self)

    def request_stop(self) -> None:
        """End the stream after the frame being processed (the results so far are kept)."""
        self._stop_requested = True

    def _open(self) -> Any:
        import av

        if self.url.lower().startswith("webcam:"):
            index = self.url.split(":", 1)[1] or "0"
            return av.open(f"/dev/video{index}", format="v4l2")
        return av.open(self.url, timeout=OPEN_TIMEOUT_US / 1e6)

    def _open_first(self) -> tuple[Any, Any]:
        import av

        try:
            container = self._open()
        except (av.FFmpegError, OSError) as exc:
            raise SpvisError(f"{self.url}: cannot open the stream ({_one_line(exc)})") from None
        try:
            if not container.streams.video:
                raise SpvisError(f"{self.url}: no video stream")
            first = next(container.decode(container.streams.video[0]), None)
        except (av.FFmpegError, OSError) as exc:
            container.close()
            raise SpvisError(f"{self.url}: cannot decode the stream ({_one_line(exc)})") from None
        if first is None:
            container.close()
            raise SpvisError(f"{self.url}: the stream has no decodable frame")
        return container, first

    def _frames(self) -> Iterator[np.ndarray]:
        import av

        count, reopened, pause = 0, 0, BACKOFF_S
        while True:
            error = None
            try:
                container = self._open()
            except (av.FFmpegError, OSError) as exc:
                container, error = None, exc
            if container is not None:
                with container:
                    decoded = container.decode(container.streams.video[0])
                    while True:
                        if self._stop_requested:
                            self._stop(f"{self.url}: stopped after {count} frames (Ctrl-C)")
                            self.stopped = True
                            return
                        try:
                            frame = next(decoded)
                        except StopIteration:
                            return  # the stream or file ended
                        except (av.FFmpegError, OSError) as exc:
                            error = exc
                            break
                        count += 1
                        yield frame.to_ndarray(format="rgb24", width=self.width, height=self.height)
            if not self.live or reopened >= RECONNECTS:
                tried = f"; gave up after {reopened} reconnects" if self.live else ""
                self._stop(f"{self.url}: stream lost after {count} frames ({_one_line(error)}){tried}")
                return
            reopened += 1
            time.sleep(pause)
            pause *= 2


@contextmanager
def stop_live_on_sigint(enabled: bool = True) -> Iterator[None]:
    """Within the block the first Ctrl-C ends every live source after its current frame (the run then writes
    what it has); a second one raises KeyboardInterrupt as usual. Main thread only; elsewhere (or not
    ``enabled``) the block runs unchanged."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = [0]

    def handler(signum: int, frame: Any) -> None:
        presses[0] += 1
        if presses[0] > 1 or not _active:
            raise KeyboardInterrupt
        for source in list(_active):
            source.request_stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _one_line(exc: BaseException | None) -> str:
    return one_line(exc) if exc is not None else "no error"
