"""Lazy frame sources: real mp4 (PyAV), frame folders, dataset records; truncated/corrupt/empty inputs."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spvis.data.frames import open_frame_source
from spvis.data.ytvis import load_video_dataset
from spvis.errors import DataFormatError, SpvisError
from spvis.viz.video_writer import VideoWriter

DATA = Path(__file__).parent / "data"


def _write_video(path: Path, frames: int, size=(48, 64), seed=0, noise=False) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    with VideoWriter(path, fps=10) as writer:
        for t in range(frames):
            frame = np.zeros(size + (3,), dtype=np.uint8)
            frame[:, :, 0] = 20 * (t % 12)  # flat colours compress well and decode close to the input
            frame[:, :, 1] = rng.integers(60, 200)
            if noise:  # every frame costs about the same bytes, so cutting the file in half keeps about half
                frame[:] = rng.integers(0, 255, frame.shape, dtype=np.uint8)
            writer.write(frame)
            out.append(frame)
    return out


def test_real_mp4_metadata_and_frames():
    src = open_frame_source(DATA / "videos" / "mmtracking_demo.mp4")
    assert (src.name, src.num_frames, src.height, src.width, src.fps) == ("mmtracking_demo", 8, 1080, 1920, 3.0)
    frames = list(src)
    assert len(frames) == 8 and frames[0].shape == (1080, 1920, 3) and frames[0].dtype == np.uint8
    assert not src.truncated and src.error is None
    assert len(list(open_frame_source(DATA / "videos" / "mmtracking_demo.mp4", max_frames=3))) == 3


def test_written_video_round_trips(tmp_path):
    written = _write_video(tmp_path / "v.mp4", 12)
    src = open_frame_source(tmp_path / "v.mp4")
    assert src.num_frames == 12 and (src.height, src.width) == (48, 64) and src.fps == pytest.approx(10.0)
    read = list(src)
    assert len(read) == 12
    assert max(np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(read, written)) < 6


def test_long_video_is_streamed_not_loaded(tmp_path):
    _write_video(tmp_path / "long.mp4", 300, size=(64, 96))
    src = open_frame_source(tmp_path / "long.mp4")
    frame_bytes = 64 * 96 * 3
    tracemalloc.start()
    count = 0
    for frame in src:
        count += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 300 and not src.truncated
    assert peak < 20 * frame_bytes  # a whole-video read would need 300 frames


def test_truncated_video_stops_and_reports(tmp_path):
    _write_video(tmp_path / "full.mp4", 40, noise=True)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    src = open_frame_source(tmp_path / "cut.mp4")
    frames = list(src)  # no exception mid-stream
    assert 0 < len(frames) < 40 and src.truncated
    assert "cut.mp4" in src.error and "\n" not in src.error
    corrupt = bytearray(data)
    corrupt[len(data) // 2: len(data) // 2 + 4000] = bytes(4000)
    (tmp_path / "corrupt.mp4").write_bytes(bytes(corrupt))
    src = open_frame_source(tmp_path / "corrupt.mp4")
    frames = list(src)
    assert len(frames) < 40 and src.truncated and "corrupt.mp4" in src.error


@pytest.mark.parametrize("content, message", [(b"", "cannot read video"), (b"not a video at all" * 10,
                                                                           "cannot read video")])
def test_unreadable_video_raises_one_line(tmp_path, content, message):
    (tmp_path / "bad.mp4").write_bytes(content)
    with pytest.raises(SpvisError, match=message) as info:
        open_frame_source(tmp_path / "bad.mp4")
    assert "bad.mp4" in str(info.value) and "\n" not in str(info.value)


def test_frame_folder_sorted_and_mixed_sizes(tmp_path):
    src = open_frame_source(DATA / "davis_mini" / "JPEGImages" / "480p" / "motocross-jump")
    assert (src.name, src.num_frames, src.height, src.width, src.fps) == ("motocross-jump", 5, 480, 854, None)
    first = next(iter(src))
    expected = np.asarray(Image.open(DATA / "davis_mini" / "JPEGImages" / "480p" / "motocross-jump" / "00000.jpg"))
    assert np.array_equal(first, expected)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, size in enumerate([(20, 30), (20, 30), (22, 30)]):
        Image.fromarray(np.zeros(size + (3,), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    (folder / "notes.txt").write_text("ignored")
    with pytest.raises(SpvisError, match=r"002\.png: frame is 22x30 but the first frame 000\.png is 20x30"):
        open_frame_source(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpvisError, match="empty: folder holds no .jpg/.jpeg/.png frames"):
        open_frame_source(empty)
    with pytest.raises(SpvisError, match="no such video file or frame folder"):
        open_frame_source(tmp_path / "nothing.mp4")


def test_dataset_record_source():
    root = DATA / "davis_mini" / "JPEGImages" / "480p"
    ds = load_video_dataset(DATA / "davis_mini" / "ytvis_gt.json", root)
    src = open_frame_source(ds.videos[1], image_root=root)
    assert src.num_frames == 5 and (src.height, src.width) == (480, 854) and src.name == "motocross-jump"
    assert sum(1 for _ in src) == 5
    bad = dict(ds.videos[0].as_dict(), height=100)
    with pytest.raises(DataFormatError, match=r"video 1: field 'height/width': frame .* is 480x854, expected 100x854"):
        open_frame_source(bad, image_root=root)
    missing = dict(ds.videos[0].as_dict(), file_names=["car-shadow/99999.jpg"])
    with pytest.raises(DataFormatError, match=r"field 'file_names': frame file not found: .*99999\.jpg"):
        open_frame_source(missing, image_root=root)


def test_max_frames_is_one_cut_that_reads_no_frame_beyond_it(tmp_path):
    """max_frames is applied once, at the source: the frame after the last wanted one is never read (so a break
    there does not mark the video truncated), and ``limit_frames`` cuts any other iterable or an open source."""
    from spvis.data.frame_source import FrameSource, limit_frames

    class Counting(FrameSource):
        def __init__(self, total: int, max_frames: int | None = None):
            super().__init__("counting", total, 4, 4, None, max_frames)
            self.read = 0

        def _frames(self):
            for _ in range(10):
                self.read += 1
                if self.read > 3:
                    self._stop("frame 3 is broken")
                    return
                yield np.zeros((4, 4, 3), np.uint8)

    src = Counting(10, max_frames=3)
    assert len(list(src)) == 3 and src.read == 3 and not src.truncated and src.num_frames == 3
    opened = Counting(10)
    assert limit_frames(opened, 2) is opened and opened.num_frames == 2 and len(list(opened)) == 2
    assert limit_frames(opened, 5).max_frames == 2  # a second limit never widens the first
    arrays = [np.zeros((4, 4, 3), np.uint8)] * 5
    limited = limit_frames(arrays, 3)
    assert len(list(limited)) == 3 and len(list(limited)) == 3 and limited.num_frames == 3  # re-iterable
    assert limit_frames(arrays, None) is arrays
    with pytest.raises(SpvisError, match="max_frames must be at least 1"):
        limit_frames(Counting(10), 0)
