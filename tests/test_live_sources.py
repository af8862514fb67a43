"""Live and remote sources through PyAV: an mp4 served from 127.0.0.1, a server that is down, a stop request
that ends the stream with the results so far, and webcam / URL names."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

import spvis
from _local_server import serve
from spvis.cli.main import main
from spvis.data.live import LiveSource, is_live, live_name, stop_live_on_sigint
from spvis.errors import SpvisError


@pytest.fixture
def served_mp4(tmp_path):
    from spvis.viz.video_writer import VideoWriter

    written = spvis.generate_synthetic_dataset(tmp_path / "d", videos=1, frames=6, size=(96, 128), categories=6,
                                               occlusion="none", valid_fraction=0.0, seed=9)
    folder = next(Path(written["train_image_root"]).iterdir())
    with VideoWriter(tmp_path / "clip.mp4", fps=5) as writer:
        for frame in spvis.open_frame_source(folder):
            writer.write(np.asarray(frame))
    for server in serve():
        server.files["/videos/clip.mp4"] = (tmp_path / "clip.mp4").read_bytes()
        yield server, f"{server.url}/videos/clip.mp4"


def test_names_of_live_sources():
    assert is_live("rtsp://cam/stream") and is_live("webcam:0") and not is_live("clip.mp4")
    assert live_name("webcam:1") == "webcam1" and live_name("http://h:80/videos/clip.mp4?x=1") == "clip"


def test_infer_reads_an_http_mp4(served_mp4, tmp_path, capsys):
    _server, url = served_mp4
    out = tmp_path / "out"
    assert main(["infer", "--input", url, "--out", str(out), "--max-frames", "4", "--device", "cpu"]) == 0
    assert "video_id 1 is clip" in capsys.readouterr().out and (out / "clip.mp4").is_file()
    entries = json.loads((out / "results.json").read_text())
    assert entries and all(len(e["segmentations"]) == 4 for e in entries)


def test_a_server_that_is_down_is_one_line(served_mp4, tmp_path, capsys):
    server, url = served_mp4
    server.stop()
    assert main(["infer", "--input", url, "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"spvis infer: error: {url}: cannot open the stream")


def test_a_stop_request_ends_the_stream_with_what_was_read(served_mp4):
    _server, url = served_mp4
    source = LiveSource(url)
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == 2:
            source.request_stop()
    assert len(frames) == 2 and source.truncated and "stopped after 2 frames" in source.error


def test_first_ctrl_c_stops_live_sources_second_interrupts(served_mp4):
    _server, url = served_mp4
    source = LiveSource(url)
    with stop_live_on_sigint():
        signal.raise_signal(signal.SIGINT)
        assert source._stop_requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)


def test_unreachable_webcam_is_an_error():
    with pytest.raises(SpvisError, match="webcam:99: cannot open the stream"):
        LiveSource("webcam:99")


class _StopAfter:
    """A live source whose user presses Ctrl-C (``request_stop``) once ``n`` frames were read."""

    def __init__(self, source: LiveSource, n: int):
        self.source, self.n = source, n

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def __iter__(self):
        for count, frame in enumerate(self.source, 1):
            yield frame
            if count == self.n:
                self.source.request_stop()


def test_a_stopped_live_stream_keeps_its_results_but_a_lost_one_needs_allow_truncated(served_mp4):
    """infer refuses a video that breaks off unless --allow-truncated; a stream the user stopped did not break."""
    from spvis.engine.inference import VideoJob, load_model, run_video

    _server, url = served_mp4
    model, cfg = load_model(None, None, ["MODEL.DEVICE=cpu"])
    job = VideoJob(1, "clip", _StopAfter(LiveSource(url), 2), None, [])
    result = run_video(model, cfg, job, mode="online", out_dir=None, score_thr=0.0, max_frames=None)
    assert result.num_frames == 2 and result.truncated and "stopped after 2 frames" in result.error
    lost = LiveSource(url)
    read = lost._frames

    def two_then_lost():  # the connection drops after two frames (reconnects spent)
        for count, frame in enumerate(read(), 1):
            yield frame
            if count == 2:
                lost._stop(f"{url}: stream lost after 2 frames (test)")
                return

    lost._frames = two_then_lost
    with pytest.raises(SpvisError, match=r"stream lost after 2 frames \(test\); .*--allow-truncated"):
        run_video(model, cfg, VideoJob(1, "clip", lost, None, []), mode="online", out_dir=None, score_thr=0.0,
                  max_frames=None)
    kept = run_video(model, cfg, VideoJob(1, "clip", lost, None, []), mode="online", out_dir=None, score_thr=0.0,
                     max_frames=None, allow_truncated=True)
    assert kept.num_frames == 2 and kept.truncated
