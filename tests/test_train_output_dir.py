"""`spvis train` never destroys a run (issue 33): a used OUTPUT_DIR needs --resume or --overwrite, --overwrite
removes only the earlier run's own files and lists them, and the final weights and last_checkpoint are written
atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

import spvis
from spvis.cli.main import main
from spvis.errors import SpvisError
from test_train_fakes import TinyClipModel, make_synth, tiny_cfg


@pytest.fixture(scope="module")
def train_json(tmp_path_factory) -> Path:
    return make_synth(tmp_path_factory.mktemp("synth"))


@pytest.fixture
def config(train_json, tmp_path, monkeypatch) -> Path:
    """A config file of the engine tests' tiny run; `spvis train` builds the tiny model instead of SPVISModel."""
    import spvis.engine.launch as launch

    monkeypatch.setattr(launch, "build_model", lambda cfg, source=None: TinyClipModel())
    path = tmp_path / "tiny.yaml"
    path.write_text(tiny_cfg(train_json, tmp_path / "unused").dump())
    return path


def _train(config: Path, out: Path, *extra: str, max_iter: int = 4) -> int:
    return main(["train", "--config", str(config), f"OUTPUT_DIR={out}", f"SOLVER.MAX_ITER={max_iter}", *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("spvis train: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_finished_run_is_refused_before_any_work(config, tmp_path, capsys, monkeypatch):
    import spvis.engine.launch as launch

    out = tmp_path / "run"
    assert _train(config, out) == 0
    assert {"model_final.safetensors", "last_checkpoint", "metrics.jsonl", "model_0000004.pth"} <= set(_snapshot(out))
    before = _snapshot(out)
    capsys.readouterr()
    monkeypatch.setattr(launch, "build_train_dataset", lambda cfg: pytest.fail("the dataset was loaded"))
    assert _train(config, out, max_iter=2) == 2
    line = _error_line(capsys)
    assert f"OUTPUT_DIR {out} holds another training run" in line and "--resume" in line and "--overwrite" in line
    assert _snapshot(out) == before  # not one byte changed, nothing added
    with pytest.raises(SpvisError, match="holds another training run"):  # the Python API behaves the same
        spvis.train(config, [f"OUTPUT_DIR={out}", "SOLVER.MAX_ITER=2"])
    assert _snapshot(out) == before


def test_an_interrupted_run_with_only_a_checkpoint_is_refused_too(config, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model_0000002.pth").write_bytes(b"a checkpoint of a preempted run")
    assert _train(config, out) == 2
    assert "model_0000002.pth" in _error_line(capsys)
    assert (out / "model_0000002.pth").read_bytes() == b"a checkpoint of a preempted run"


def test_overwrite_removes_only_the_earlier_runs_files_and_lists_them(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(config, out, max_iter=6) == 0
    mine = {"notes.txt": b"my notes", "model_0000006.safetensors": b"an export I made", "plot.png": b"png"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    (out / ".model_0000004.pth.abc123.tmp").write_bytes(b"")  # a temporary a kill left behind
    capsys.readouterr()
    assert _train(config, out, "--overwrite", max_iter=2) == 0
    err = capsys.readouterr().err
    removed = next(line for line in err.splitlines() if "--overwrite: removed" in line)
    for name in ("model_0000006.pth", "model_0000004.pth", "last_checkpoint", "model_final.safetensors",
                 "metrics.jsonl", ".model_0000004.pth.abc123.tmp"):
        assert name in removed
    assert not any(name in removed for name in mine)
    files = _snapshot(out)
    assert all(files[name] == data for name, data in mine.items())
    assert "model_0000006.pth" not in files and "model_0000004.pth" not in files  # the old run is gone
    assert files["last_checkpoint"] == b"model_0000002.pth\n"
    assert len(files["metrics.jsonl"].splitlines()) == 2  # the new run's log only


def test_resume_continues_and_the_api_takes_overwrite(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(config, out, max_iter=2) == 0
    assert _train(config, out, "--resume", max_iter=4) == 0
    assert "resumed from" in capsys.readouterr().err
    assert (out / "last_checkpoint").read_text() == "model_0000004.pth\n"
    assert spvis.train(config, [f"OUTPUT_DIR={out}", "SOLVER.MAX_ITER=2"], overwrite=True) == 0
    assert (out / "last_checkpoint").read_text() == "model_0000002.pth\n" and not (out / "model_0000004.pth").exists()
    with pytest.raises(SpvisError, match="contradict"):
        spvis.train(config, [f"OUTPUT_DIR={out}"], resume=True, overwrite=True)
    with pytest.raises(SystemExit) as info:  # the flags are exclusive on the command line
        _train(config, out, "--resume", "--overwrite")
    assert info.value.code == 2


def test_a_folder_of_other_files_or_a_failed_start_is_not_a_run(config, tmp_path):
    from spvis.engine.run_dir import holds_a_run

    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "config.yaml").write_text("a run that stopped before its first step")
    (out / "metrics.jsonl").write_text("")
    assert holds_a_run(out) == []
    assert _train(config, out, max_iter=2) == 0
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("target", ["model_final", "last_checkpoint"])
def test_final_weights_and_last_checkpoint_are_replaced_atomically(config, tmp_path, monkeypatch, target):
    """A kill while model_final.safetensors or last_checkpoint is being written (simulated by an exception in the
    middle of the write) leaves the previous complete file and no temporary."""
    import spvis.utils.atomic_io as atomic_io

    out = tmp_path / "run"
    assert _train(config, out, max_iter=2) == 0
    before = _snapshot(out)
    real_finish = atomic_io.finish_temp_file

    def killed_mid_write(tmp_name, path):
        if Path(path).name == ("model_final.safetensors" if target == "model_final" else "last_checkpoint"):
            Path(tmp_name).write_bytes(b"half")
            raise KeyboardInterrupt
        return real_finish(tmp_name, path)

    monkeypatch.setattr(atomic_io, "finish_temp_file", killed_mid_write)
    assert _train(config, out, "--resume", max_iter=4) == 130
    after = _snapshot(out)
    assert after["model_final.safetensors"] == before["model_final.safetensors"]
    assert after["last_checkpoint"] == (before["last_checkpoint"] if target == "last_checkpoint"
                                        else b"model_0000004.pth\n")
    assert not [name for name in after if name.startswith(".")]
