"""`spvis infer --resume` is safe (issue 33): a resume with other result-changing settings is refused naming the
setting, a killed run's hidden temporaries are gone once the resume has finished, and the interrupt message says
how to continue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spvis.cli import infer_cmd
from spvis.cli.main import main
from spvis.errors import SpvisError
from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from test_reliability import (REPO, _hidden, _infer_argv, _logged_videos, _one_error_line, dataset,  # noqa: F401
                              reference, weights)


@pytest.fixture
def half_done(weights, dataset, tmp_path, monkeypatch, capsys) -> Path:
    """--out of a default (online) run that finished video 1 and failed in video 2."""
    real = infer_cmd.run_video

    def fails_on_video_2(model, cfg, job, **kwargs):
        if job.video_id == 2:
            raise SpvisError("simulated failure")
        return real(model, cfg, job, **kwargs)

    out = tmp_path / "out"
    monkeypatch.setattr(infer_cmd, "run_video", fails_on_video_2)
    assert main(_infer_argv(weights, dataset, out, "--no-overlay")) == 2
    monkeypatch.setattr(infer_cmd, "run_video", real)
    capsys.readouterr()
    assert _logged_videos(out) == [1]
    return out


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("flags, named", [
    (["--mode", "offline"], "--mode (mode) was 'online' in the run in"),
    (["--score-thr", "0.5"], "--score-thr (score_thr) was 0.0"),
    (["--max-frames", "2"], "--max-frames (max_frames) was None"),
    (["--tracker", "minvis"], "setting config.TEST.TRACKER was 'learned'"),
    (["TEST.TRACK_NMS_IOU=0.3"], "setting config.TEST.TRACK_NMS_IOU"),
    (["--half"], "setting config.TEST.HALF was ''"),
], ids=["mode", "score-thr", "max-frames", "tracker", "override", "half"])
def test_resume_with_other_settings_is_refused_naming_the_setting(weights, dataset, half_done, capsys, flags, named):
    before = _files(half_done)
    assert main(_infer_argv(weights, dataset, half_done, "--no-overlay", "--resume", *flags)) == 2
    line = _one_error_line(capsys)
    assert named in line and "--exist-ok" in line, line
    assert _files(half_done) == before


def test_resume_with_other_weights_at_the_same_path_is_refused(weights, dataset, half_done, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    moved = tmp_path / "w" / "tiny.safetensors"  # a byte-identical copy elsewhere is the same weights
    moved.parent.mkdir()
    moved.write_bytes(weights.read_bytes())
    moved.with_suffix(".yaml").write_bytes(weights.with_suffix(".yaml").read_bytes())
    state = load_file(str(moved))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 1  # retrained in place
    save_file(state, str(moved))
    assert main(_infer_argv(moved, dataset, half_done, "--no-overlay", "--resume")) == 2
    assert "--weights/--model (weights) was 'sha256:" in _one_error_line(capsys)


def test_resume_with_the_same_settings_finishes_and_a_log_without_settings_is_refused(weights, dataset, half_done,
                                                                                      reference, capsys):
    moved = half_done.parent / "copy" / "tiny.safetensors"  # weights are identified by content, not path
    moved.parent.mkdir()
    moved.write_bytes(weights.read_bytes())
    moved.with_suffix(".yaml").write_bytes(weights.with_suffix(".yaml").read_bytes())
    (half_done / "results.settings.json").rename(half_done.parent / "settings.json")
    assert main(_infer_argv(moved, dataset, half_done, "--no-overlay", "--resume")) == 2
    assert "results.settings.json is missing" in _one_error_line(capsys)
    (half_done.parent / "settings.json").rename(half_done / "results.settings.json")
    assert main(_infer_argv(moved, dataset, half_done, "--no-overlay", "--resume", "--max-memory-gb", "1",
                            "--mode", "online")) == 2  # --max-memory-gb is offline-only: a flag error, not settings
    capsys.readouterr()
    assert main(_infer_argv(moved, dataset, half_done, "--no-overlay", "--resume", "--device", "cpu")) == 0
    assert _logged_videos(half_done) == [1, 2, 3] and (half_done / "results.json").read_bytes() == reference
    settings = json.loads((half_done / "results.settings.json").read_text())
    assert settings["mode"] == "online" and settings["weights"].startswith("sha256:")
    assert not any(key.startswith(("config.OUTPUT_DIR", "config.SOLVER.", "config.MODEL.WEIGHTS")) for key in settings)


_KILLED_CHILD = """
import os, signal, sys
import torch
torch.set_num_threads(1)
import spvis.viz.overlay as overlay
from spvis.cli.main import main

real, calls = overlay.draw_overlay, []

def draw_then_die(*args, **kwargs):
    calls.append(1)
    if len(calls) == {kill_at}:  # video 2's second frame: its overlay is a hidden temporary mp4 by now
        os.kill(os.getpid(), signal.SIGKILL)  # no handler, no cleanup: what a preemption or the OOM killer does
    return real(*args, **kwargs)

overlay.draw_overlay = draw_then_die
sys.exit(main({argv!r}))
"""


def test_a_killed_runs_temporary_overlay_is_gone_after_the_resume(weights, dataset, reference, tmp_path, capsys):
    from test_reliability import FRAMES

    out = tmp_path / "out"
    code = _KILLED_CHILD.format(kill_at=FRAMES + 2, argv=_infer_argv(weights, dataset, out))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == -9, child.stderr
    left = _hidden(out)
    assert any(name.startswith(".2.") and name.endswith(".mp4") for name in left), left
    (out / ".results.json.k1ll3d_x.tmp").write_bytes(b"")  # as a kill inside the final atomic write leaves
    (out / ".notes.k1ll3d_x.tmp").write_bytes(b"mine")  # not a temporary of this command: stays
    assert main(_infer_argv(weights, dataset, out, "--resume")) == 0
    assert _hidden(out) == [".notes.k1ll3d_x.tmp"]
    assert "removed 2 temporary files a killed run left" in capsys.readouterr().err
    assert _logged_videos(out) == [1, 2, 3] and (out / "results.json").read_bytes() == reference


def test_the_interrupt_message_says_how_to_continue(weights, dataset, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(infer_cmd, "run_video", interrupted)
    assert main(_infer_argv(weights, dataset, tmp_path / "out")) == 130
    assert "spvis infer: interrupted: rerun the same command with --resume to continue" in capsys.readouterr().err
