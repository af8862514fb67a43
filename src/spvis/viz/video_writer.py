"""mp4 writing with PyAV, atomically: frames go to a temporary file that replaces the target on close."""

from __future__ import annotations

import contextlib
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from spvis.errors import SpvisError
from spvis.utils.atomic_io import finish_temp_file

CODEC_PREFERENCE = ("libx264", "h264", "libopenh264", "mpeg4")  # first encoder this PyAV build has wins


def available_encoder() -> str:
    """Name of the first video encoder of ``CODEC_PREFERENCE`` present in this PyAV/FFmpeg build."""
    for name in CODEC_PREFERENCE:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # UnknownCodecError (name differs between PyAV versions) or no encoder
            continue
        return name
    raise SpvisError(f"this PyAV build has none of the video encoders {', '.join(CODEC_PREFERENCE)}")


class VideoWriter:
    """Write uint8 RGB frames (H, W, 3) to an mp4; the file appears at ``path`` only after ``close()``.

    The size is fixed by the first frame (odd sizes are padded by one edge pixel: yuv420p needs even sizes).
    Use as a context manager; on an exception the temporary file is removed and ``path`` is untouched.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 10.0, *, codec: str | None = None, crf: int = 23):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise SpvisError(f"{self.path}: overlay videos are written as .mp4")
        if not fps or fps <= 0:
            raise SpvisError(f"{self.path}: fps must be positive, got {fps}")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.codec = codec or available_encoder()
        self.crf = int(crf)
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._tmp: str | None = None
        self._size: tuple[int, int] | None = None  # (H, W) as written

    def _open(self, height: int, width: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".mp4", dir=self.path.parent)
        os.close(fd)
        # faststart: the index goes first, so players start at once and a cut-off copy still decodes its head
        self._container = av.open(self._tmp, mode="w", format="mp4", options={"movflags": "faststart"})
        self._stream = self._container.add_stream(self.codec, rate=self.fps)
        self._size = (height + height % 2, width + width % 2)
        self._stream.height, self._stream.width = self._size
        self._stream.pix_fmt = "yuv420p"
        if self.codec in ("libx264", "h264"):
            self._stream.options = {"crf": str(self.crf), "preset": "veryfast"}

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 RGB frame (H, W, 3); every frame must have the first frame's size."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"VideoWriter expects uint8 (H, W, 3) frames, got {frame.dtype} {frame.shape}")
        if self._container is None:
            self._open(frame.shape[0], frame.shape[1])
        h, w = self._size
        if frame.shape[0] not in (h, h - 1) or frame.shape[1] not in (w, w - 1):
            raise ValueError(f"{self.path}: frame {self.frames_written} is {frame.shape[0]}x{frame.shape[1]}, "
                             f"the video is {h}x{w}")
        if frame.shape[:2] != (h, w):
            frame = np.pad(frame, ((0, h - frame.shape[0]), (0, w - frame.shape[1]), (0, 0)), mode="edge")
        packet_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(packet_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file to ``path`` (no file when no frame was written)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        finish_temp_file(self._tmp, self.path)  # fsync, normal permissions (not mkstemp's 0600), rename
        self._tmp = None

    def abort(self) -> None:
        """Drop everything written so far; ``path`` keeps its previous content."""
        if self._container is not None:
            with contextlib.suppress(Exception):  # the container may already be broken; the temp file goes anyway
                self._container.close()
            self._container = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
