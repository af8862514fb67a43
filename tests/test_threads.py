"""--threads on infer, demo, eval and train, and the default it falls back to."""

from __future__ import annotations

import pytest
import torch

from spvis.cli.main import build_parser, main
from spvis.utils import threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_every_computing_command_takes_threads():
    parser = build_parser()
    for command in (["infer", "--input", "v.mp4", "--out", "o"], ["demo"], ["eval", "--gt", "g", "--pred", "p"],
                    ["train", "--config", "c.yaml"]):
        assert parser.parse_args([*command, "--threads", "3"]).threads == 3


def test_threads_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["infer", "--input", "v.mp4", "--out", "o", "--threads", "0"])
    assert exit_info.value.code == 2 and "expected a whole number >= 1, got 0" in capsys.readouterr().err


def test_infer_sets_the_thread_count(tmp_path, test_data_dir):
    folder = test_data_dir / "davis_mini" / "JPEGImages" / "480p" / "car-shadow"
    torch.set_num_threads(2)
    assert main(["infer", "--input", str(folder), "--out", str(tmp_path / "o"), "--max-frames", "1",
                 "--no-overlay", "--device", "cpu", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1


def test_train_passes_threads_as_solver_cpu_threads(monkeypatch):
    import spvis.engine.launch as launch

    seen = {}
    monkeypatch.setattr(launch, "train", lambda config, overrides, **kw: seen.setdefault("o", overrides) and 0)
    assert main(["train", "--config", "synth/segmenter.yaml", "--threads", "3", "SOLVER.MAX_ITER=1"]) == 0
    assert seen["o"] == ["SOLVER.MAX_ITER=1", "SOLVER.CPU_THREADS=3"]


def test_default_is_one_core_fewer_unless_omp_says(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    assert threads.default_threads() == 1
    monkeypatch.setattr(threads, "available_cores", lambda: 64)
    assert threads.default_threads() == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() == 3 and threads.set_threads() == 3 and torch.get_num_threads() == 3
