"""``spvis infer`` end to end with a tiny fake model: results.json, overlay mp4, bad-input errors."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch

from _tracker_fakes import FakeSegmenterModel, tiny_cfg, single_thread  # noqa: F401 (autouse fixture)
from spvis.cli import infer_cmd
from spvis.cli.main import main
from spvis.checkpoints.loading import load_state_strict
from spvis.errors import CheckpointError


class FakeSource:
    """A frame source as spvis.data.frames provides: lazy frames, fps, truncation flag."""

    def __init__(self, count: int, *, truncated_after: int | None = None):
        rng = np.random.default_rng(1)
        self.base = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
        self.count, self.truncated_after = count, truncated_after
        self.name, self.fps, self.height, self.width = "clip", 5.0, 40, 60
        self.num_frames = count
        self.truncated, self.error = False, None

    def __iter__(self):
        for t in range(self.count):
            if self.truncated_after is not None and t == self.truncated_after:
                self.truncated, self.error = True, f"clip.mp4: truncated after frame {t}"
                return
            yield np.roll(self.base, 3 * t, axis=1)


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    cfg = tiny_cfg()

    def install(source):
        monkeypatch.setattr(infer_cmd, "load_model", lambda *a: (FakeSegmenterModel(cfg).eval(), cfg))
        monkeypatch.setattr(infer_cmd, "iter_jobs", lambda *a: iter(
            [infer_cmd.VideoJob(1, "clip", source, None, ["a", "b", "c"])]))
        video = tmp_path / "in.mp4"
        video.write_bytes(b"placeholder input; frames come from the fake source")
        return ["infer", "--input", str(video), "--weights", "w.safetensors", "--out", str(tmp_path / "out")]
    return install


def test_infer_writes_results_and_overlay(fake_run, tmp_path):
    argv = fake_run(FakeSource(6))
    assert main(argv) == 0
    entries = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(entries) == tiny_cfg().TEST.MAX_NUM
    assert all(len(e["segmentations"]) == 6 and e["video_id"] == 1 for e in entries)
    with av.open(str(tmp_path / "out" / "clip.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_truncated_video_is_an_error_unless_allowed(fake_run, tmp_path, capsys):
    argv = fake_run(FakeSource(6, truncated_after=4))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("spvis infer: error: clip.mp4: truncated after frame 4") and "--allow-truncated" in err[-1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no overlay, no results
    argv = fake_run(FakeSource(6, truncated_after=4))
    assert main(argv + ["--no-overlay", "--allow-truncated"]) == 0
    assert "truncated after frame 4" in capsys.readouterr().err
    entries = json.loads((tmp_path / "out" / "results.json").read_text())
    assert entries and all(len(e["segmentations"]) == 4 for e in entries)
    assert not (tmp_path / "out" / "clip.mp4").exists()


def test_max_frames_limits_the_stream(fake_run, tmp_path):
    argv = fake_run(FakeSource(6))
    assert main(argv + ["--max-frames", "3", "--no-overlay"]) == 0
    entries = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all(len(e["segmentations"]) == 3 for e in entries)


def test_zero_frames_is_a_one_line_error(fake_run, capsys):
    argv = fake_run(FakeSource(0))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("spvis infer: error:") and "no frames" in err[-1]


def test_missing_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["infer", "--input", str(tmp_path / "nope.mp4"), "--weights", "w", "--out", str(tmp_path)]) == 2
    assert "nope.mp4: no such file" in capsys.readouterr().err


def test_weights_that_do_not_match_the_config_name_the_keys():
    model = FakeSegmenterModel(tiny_cfg())
    state = model.state_dict()
    state["tracker.class_embed.weight"] = torch.zeros(9, 16)
    del state["pixel_proj.bias"]
    with pytest.raises(CheckpointError, match=r"w.safetensors: .*class_embed.weight.*missing: pixel_proj.bias"):
        load_state_strict(model, state, source="w.safetensors")


@pytest.mark.parametrize("extra, message", [
    (["--max-memory-gb", "1"], "--max-memory-gb applies to --mode offline only"),
    (["--mode", "offline", "--window-size", "0"], "--window-size must be >= 1"),
    (["--mode", "offline", "--max-memory-gb", "-2"], "--max-memory-gb must be >= 0"),
])
def test_offline_budget_flags_are_checked(fake_run, capsys, extra, message):
    assert main(fake_run(FakeSource(3)) + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
