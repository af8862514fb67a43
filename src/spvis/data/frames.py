"""Frame sources for inference: a video file, a folder of frames, or a dataset video record, read lazily.

Every source is a ``spvis.data.frame_source.FrameSource`` (that module states the contract: lazy uint8 RGB
frames, ``.truncated`` / ``.error`` instead of raising mid-stream, ``max_frames``); ``open_frame_source`` picks
the kind for a path, a record or a live URL (``spvis.data.live``).

Frame lists (folders, dataset records) are checked when opened, from headers and end markers
(``spvis.data.frame_check``): a missing, empty, cut, zeroed or mis-sized frame raises ``SpvisError`` naming it,
or with ``allow_truncated`` ends the video before it (``.truncated`` set). A video file's frame size is checked
against the pixel budget from its stream header, before a frame is decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from spvis.data.frame_check import check_frame_file, frame_file_error
from spvis.data.frame_source import FrameSource
from spvis.data.live import LiveSource, is_live
from spvis.data.png_io import check_size, open_image
from spvis.data.ytvis import VideoRecord
from spvis.errors import DataFormatError, SpvisError, one_line

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV, one frame at a time (the first video stream)."""

    def __init__(self, path: Path, max_frames: int | None = None):
        import av

        self.path = path
        try:
            # metadata that is not UTF-8 (a damaged or foreign tag) must not stop the pixels being read (fuzz suite)
            with av.open(str(path), metadata_errors="replace") as container:
                if not container.streams.video:
                    raise SpvisError(f"{path}: no video stream in this file")
                stream = container.streams.video[0]
                codec = stream.codec_context
                if codec is None:  # a damaged stream header names no codec PyAV can open (fuzz suite)
                    raise SpvisError(f"{path}: cannot read video: its video stream has no usable codec")
                if codec.width and codec.height:  # the budget before any decoding
                    check_size(path, codec.height, codec.width, field="video stream")
                num = int(stream.frames) or None  # 0 = the container does not say
                fps = float(stream.average_rate) if stream.average_rate else None
                first = next(container.decode(stream), None)
        except SpvisError:
            raise
        except (av.FFmpegError, OSError, StopIteration) as exc:
            raise SpvisError(f"{path}: cannot read video: {one_line(exc)}") from None
        if first is None:
            raise SpvisError(f"{path}: video has no decodable frame")
        super().__init__(path.stem, num, first.height, first.width, fps, max_frames)

    def _frames(self) -> Iterator[np.ndarray]:
        import av

        count = 0
        try:
            container = av.open(str(self.path), metadata_errors="replace")
        except (av.FFmpegError, OSError) as exc:
            self._stop(f"{self.path}: cannot reopen video: {one_line(exc)}")
            return
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = container.decode(stream)
            while True:
                try:
                    frame = next(decoded)
                except StopIteration:
                    break
                except (av.FFmpegError, OSError) as exc:
                    self._stop(f"{self.path}: decoding stopped after {count} frames: {one_line(exc)}")
                    return
                if frame.height != self.height or frame.width != self.width:  # mid-stream resolution change
                    array = frame.to_ndarray(format="rgb24", width=self.width, height=self.height)
                else:
                    array = frame.to_ndarray(format="rgb24")
                count += 1
                yield array  # (H, W, 3) uint8 (FrameSource stops asking after max_frames)
        if self.num_frames is not None and count < self.num_frames:
            self._stop(f"{self.path}: video ends after {count} of {self.num_frames} frames (truncated file)")


class ImageSequenceSource(FrameSource):
    """A list of image files of one size (a frame folder or a dataset record); every frame file is checked when
    opened (header and end marker, not decoded: cheap even for thousands of frames). A bad frame raises, or with
    ``allow_truncated`` ends the video before it (not the first frame: then nothing is left)."""

    def __init__(self, name: str, paths: list[Path], *, expect: tuple[int, int] | None = None,
                 source: str | None = None, max_frames: int | None = None, allow_truncated: bool = False):
        if max_frames is not None:
            paths = paths[:max_frames]
        size, cut = None, None
        for index, path in enumerate(paths):
            frame_size, problem = _check_frame(path, expect, size, paths[0].name, source)
            if problem is not None:
                if not allow_truncated or index == 0:
                    raise problem
                paths, cut = paths[:index], f"{problem} (the video ends before it: --allow-truncated)"
                break
            size = size or frame_size
        self.paths, self.source = paths, source
        if size is None:
            raise SpvisError(f"{source or name}: no frames")
        super().__init__(name, len(paths), size[0], size[1], None, max_frames)
        self.cut = cut

    def _frames(self) -> Iterator[np.ndarray]:
        for count, path in enumerate(self.paths):
            try:
                with open_image(path) as im:
                    frame = np.asarray(im.convert("RGB"))  # (H, W, 3) uint8
            except OSError as exc:
                self._stop(f"{path}: cannot read frame {count}: {one_line(exc)}")
                return
            yield frame


def _check_frame(path: Path, expect: tuple[int, int] | None, size: tuple[int, int] | None, first: str,
                 source: str | None) -> tuple[tuple[int, int] | None, SpvisError | None]:
    """((height, width), None) of a whole frame file, else (None, the error naming it): missing, broken, not the
    json's size (``expect``) or not the first frame's (``size``)."""
    try:
        h, w = check_frame_file(path)
    except (FileNotFoundError, OSError) as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else one_line(exc)
        if source is None:  # a frame folder: the file is the whole story
            return None, SpvisError(f"{path}: frame {reason}")
        return None, frame_file_error(source, path, exc)
    if expect is not None and (h, w) != tuple(expect):
        return None, DataFormatError(source or path, f"frame {path} is {h}x{w}, expected {expect[0]}x{expect[1]}",
                                     field="height/width")
    if size is not None and (h, w) != size:
        return None, SpvisError(f"{path}: frame is {h}x{w} but the first frame {first} is {size[0]}x{size[1]}; all "
                                f"frames of a video must have one size")
    return (h, w), None


def open_frame_source(path_or_video_record: Any, image_root: str | Path | None = None,
                      max_frames: int | None = None, *, allow_truncated: bool = False) -> FrameSource:
    """A lazy frame source for a video file, a frame folder (sorted jpg/png) or a ``VideoRecord``/video dict.

    ``image_root`` is the folder that a record's ``file_names`` are relative to. A URL (rtsp, rtmp, http(s)) or
    ``webcam:N`` gives a ``spvis.data.live.LiveSource``. ``allow_truncated``: a bad frame of a frame list ends the
    video before it instead of raising (see the module docstring).
    """
    if is_live(path_or_video_record):
        return LiveSource(path_or_video_record, max_frames=max_frames)
    record = path_or_video_record
    if isinstance(record, dict) and "file_names" in record:
        record = VideoRecord(int(record.get("id", 0)), list(record["file_names"]), int(record["height"]),
                             int(record["width"]), len(record["file_names"]), str(record.get("name", "")))
    if isinstance(record, VideoRecord):
        root = Path(image_root) if image_root is not None else Path(".")
        paths = [root / name for name in record.file_names]
        name = record.name or (Path(record.file_names[0]).parent.name if record.file_names else "") or str(record.id)
        return ImageSequenceSource(name, paths, expect=(record.height, record.width),
                                   source=f"{root}: video {record.id}", max_frames=max_frames,
                                   allow_truncated=allow_truncated)
    path = Path(path_or_video_record)
    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not frames:
            raise SpvisError(f"{path}: folder holds no .jpg/.jpeg/.png frames")
        return ImageSequenceSource(path.name, frames, max_frames=max_frames, allow_truncated=allow_truncated)
    if not path.exists():
        raise SpvisError(f"{path}: no such video file or frame folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSequenceSource(path.stem, [path], max_frames=max_frames)
    return VideoFileSource(path, max_frames=max_frames)
