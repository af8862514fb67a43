"""Nothing lost, overwritten or half-written (issue 25): broken weights refused at load, dataset runs that keep
every finished video and resume to the same bytes, a used --out refused, training that survives a damaged
newest checkpoint and a SIGTERM to its whole process group, .pkl object arrays refused in one line."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.checkpoints import save_weights
from spvis.cli import infer_cmd
from spvis.cli.main import main
from spvis.config import load_config
from spvis.errors import CheckpointError, SpvisError
from spvis.modeling.meta_arch import SPVISModel

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
TINY = ["MODEL.DEVICE=cpu", "MODEL.NUM_CLASSES=3", "MODEL.BACKBONE.WIDTH=8", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.PIXEL_DECODER.ENC_FFN=64",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.DECODER.NUM_QUERIES=6", "MODEL.DECODER.DIM_FEEDFORWARD=64",
        "MODEL.DECODER.DEC_LAYERS=1", "MODEL.TRACKER.DECODER_LAYERS=1", "INPUT.MIN_SIZE_TEST=32",
        "INPUT.MAX_SIZE_TEST=48"]
FRAMES = 3  # per video of the dataset below


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", TINY)
    torch.manual_seed(0)
    return save_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors", SPVISModel.from_config(cfg), cfg)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[str, str]:
    """(dataset json, image root) of three 3-frame 32x48 videos with ids 1, 2, 3."""
    from spvis.data.synth import generate_synthetic_dataset

    info = generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), videos=3, frames=FRAMES, size=(32, 48),
                                      categories=3, max_objects=2, valid_fraction=0.0, seed=3)
    assert [v["id"] for v in json.loads(Path(info["train_json"]).read_text())["videos"]] == [1, 2, 3]
    return info["train_json"], info["train_image_root"]


@pytest.fixture(scope="module")
def reference(weights, dataset, tmp_path_factory) -> bytes:
    """results.json of an uninterrupted dataset run (overlays on), with one torch thread like the tests it is
    compared with (module fixtures run before the autouse single_thread one; with 2 threads the float
    reductions, and so the scores' last digits, differ)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_infer_argv(weights, dataset, out)) == 0
    finally:
        torch.set_num_threads(previous)
    assert sorted(p.name for p in out.iterdir()) == ["1.mp4", "2.mp4", "3.mp4", "results.json", "results.jsonl",
                                                   "results.settings.json"]
    return (out / "results.json").read_bytes()


def _infer_argv(weights: Path, dataset: tuple[str, str], out: Path, *extra: str) -> list[str]:
    return ["infer", "--input", dataset[0], "--image-root", dataset[1], "--weights", str(weights), "--out", str(out),
            *extra]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("spvis infer: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def _logged_videos(out: Path) -> list[int]:
    return [json.loads(line)["video_id"] for line in (out / "results.jsonl").read_text().splitlines()]


def _hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------ 1. non-finite weights
def test_load_weights_names_the_file_and_the_first_non_finite_tensor(weights, tmp_path):
    from safetensors.torch import load_file, save_file

    from spvis.checkpoints import load_weights
    from spvis.checkpoints.io import require_finite

    state = load_file(str(weights))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[3]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(state, str(bad))
    (tmp_path / "nan.yaml").write_text(weights.with_suffix(".yaml").read_text())
    with pytest.raises(CheckpointError, match=rf"nan.safetensors: tensor '{name}' holds 1 NaN/inf value"):
        load_weights(bad)
    ordered = {"a": torch.zeros(2), "b": torch.tensor([1.0, float("inf")]), "c": torch.tensor([float("nan")]),
               "n": torch.tensor([3])}
    with pytest.raises(CheckpointError, match=r"w.safetensors: tensor 'b' holds 1 NaN/inf value\(s\) of 2"):
        require_finite(ordered, "w.safetensors")
    require_finite({"a": torch.zeros(2), "n": torch.tensor([3])}, "fine")


def test_infer_with_nan_weights_is_one_line_and_writes_nothing(weights, tmp_path, test_data_dir, capsys):
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name] = torch.full_like(state[name], float("inf"))
    bad = tmp_path / "broken.safetensors"
    save_file(state, str(bad))
    (tmp_path / "broken.yaml").write_text(weights.with_suffix(".yaml").read_text())
    out = tmp_path / "out"
    code = main(["infer", "--input", str(test_data_dir / "videos" / "mmtracking_demo.mp4"), "--weights", str(bad),
                 "--out", str(out), "--max-frames", "2"])
    assert code == 2
    line = _one_error_line(capsys)
    assert "broken.safetensors" in line and f"'{name}'" in line and "NaN/inf" in line
    assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------------------------------- 2. dataset runs
def test_error_in_video_2_keeps_video_1_and_resume_gives_the_same_bytes(weights, dataset, reference, tmp_path,
                                                                       monkeypatch, capsys):
    real = infer_cmd.run_video

    def fails_on_video_2(model, cfg, job, **kwargs):
        if job.video_id == 2:
            raise SpvisError("frame 1: simulated decoder failure")
        return real(model, cfg, job, **kwargs)

    out = tmp_path / "out"
    monkeypatch.setattr(infer_cmd, "run_video", fails_on_video_2)
    assert main(_infer_argv(weights, dataset, out)) == 2
    line = _one_error_line(capsys)
    assert "video 2: frame 1: simulated decoder failure" in line and "--resume" in line
    assert _logged_videos(out) == [1]
    assert sorted(p.name for p in out.iterdir()) == ["1.mp4", "results.jsonl", "results.settings.json"]  # no results.json, no temp file
    ran = []
    monkeypatch.setattr(infer_cmd, "run_video",
                        lambda model, cfg, job, **kw: ran.append(job.video_id) or real(model, cfg, job, **kw))
    assert main(_infer_argv(weights, dataset, out, "--resume")) == 0
    assert ran == [2, 3] and _logged_videos(out) == [1, 2, 3]
    assert (out / "results.json").read_bytes() == reference


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "sigint"])
def test_signal_mid_video_leaves_no_temp_file_and_resume_gives_the_same_bytes(weights, dataset, reference, tmp_path,
                                                                             monkeypatch, capsys, signum, code):
    """The signal arrives while video 2's overlay is half encoded: its temp mp4 goes, video 1's line stays; a
    half-written log line (as a kill during the append leaves) is cut off by --resume."""
    import spvis.viz.overlay as overlay

    real_draw, calls = overlay.draw_overlay, []

    def draw_then_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == FRAMES + 2:  # video 2's second frame: its first frame is in a temp mp4 by now
            assert any(p.suffix == ".mp4" for p in out.glob(".2.*")), sorted(p.name for p in out.iterdir())
            os.kill(os.getpid(), signum)
        return real_draw(*args, **kwargs)

    out = tmp_path / "out"
    monkeypatch.setattr(overlay, "draw_overlay", draw_then_signal)
    assert main(_infer_argv(weights, dataset, out)) == code
    assert ("terminated" if signum == signal.SIGTERM else "interrupted") in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["1.mp4", "results.jsonl", "results.settings.json"] and _logged_videos(out) == [1]
    monkeypatch.setattr(overlay, "draw_overlay", real_draw)
    with open(out / "results.jsonl", "a") as log:
        log.write('{"video_id": 2, "entries": [{"video_id": 2, "categ')
    assert main(_infer_argv(weights, dataset, out, "--resume")) == 0
    assert "half-written last line" in capsys.readouterr().err
    assert _logged_videos(out) == [1, 2, 3] and _hidden(out) == []
    assert (out / "results.json").read_bytes() == reference


def test_results_log_reader_keeps_complete_lines_and_refuses_a_damaged_middle(tmp_path):
    from spvis.engine.results_log import ResultsLog
    from spvis.errors import DataFormatError

    log = ResultsLog(tmp_path / "results.jsonl")
    assert log.read() == {}
    log.append(4, [{"score": 0.5}])
    log.append(7, [])
    assert log.read() == {4: [{"score": 0.5}], 7: []} and not log.dropped_partial_line
    complete = log.path.read_bytes()
    log.path.write_bytes(complete + b'{"video_id": 9, "entries": []}')  # no newline: the write was cut off
    assert set(log.read()) == {4, 7} and log.dropped_partial_line and log.path.read_bytes() == complete
    log.path.write_bytes(b"garbage\n" + complete)
    with pytest.raises(DataFormatError, match=r"results.jsonl: line 1"):
        log.read()


# --------------------------------------------------------------------------------------------- 3. a used --out
def test_used_out_is_refused_before_any_work_and_names_the_flags(weights, dataset, reference, tmp_path,
                                                                 monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_bytes(b"[]")
    monkeypatch.setattr(infer_cmd, "load_model", lambda *a: pytest.fail("the model was loaded"))
    assert main(_infer_argv(weights, dataset, out)) == 2
    line = _one_error_line(capsys)
    assert "results.json" in line and "--resume" in line and "--exist-ok" in line
    assert (out / "results.json").read_bytes() == b"[]" and sorted(p.name for p in out.iterdir()) == ["results.json"]
    (out / "results.json").unlink()
    (out / "metrics.json").write_text("{}")  # scores of an earlier run beside its results
    assert main(_infer_argv(weights, dataset, out, "--no-overlay")) == 2
    assert "metrics.json" in _one_error_line(capsys)


def test_exist_ok_replaces_only_this_commands_outputs(weights, dataset, reference, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = {"video_id": 1, "entries": [{"video_id": 1, "category_id": 1, "score": 0.5, "segmentations": []}]}
    (out / "results.jsonl").write_text(json.dumps(stale) + "\n")  # another run's log: must not be reused
    (out / "2.mp4").write_bytes(b"an old overlay")
    keep = {"metrics.json": "{}", "notes.txt": "mine", "other.mp4": "not an overlay of this run"}
    for name, text in keep.items():
        (out / name).write_text(text)
    assert main(_infer_argv(weights, dataset, out, "--exist-ok")) == 0
    assert (out / "results.json").read_bytes() == reference and _logged_videos(out) == [1, 2, 3]
    assert all((out / name).read_text() == text for name, text in keep.items())
    assert (out / "2.mp4").read_bytes() != b"an old overlay"


def test_resume_refuses_another_inputs_log(weights, dataset, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text(json.dumps({"video_id": 42, "entries": []}) + "\n")
    assert main(_infer_argv(weights, dataset, out, "--resume")) == 2
    assert "video 42" in _one_error_line(capsys)


# ------------------------------------------------------------------------------------------------- 4. training
def _trainer(cfg, *, resume: bool, log: io.StringIO):
    from spvis.engine.distributed import init_distributed
    from spvis.engine.launch import build_train_dataset
    from spvis.engine.trainer import Trainer, setup_reproducibility
    from test_train_fakes import TinyClipModel

    setup_reproducibility(cfg)
    return Trainer(cfg, TinyClipModel(), build_train_dataset(cfg), init_distributed("cpu"), resume=resume,
                   log_stream=log)


@pytest.fixture(scope="module")
def train_json(tmp_path_factory) -> Path:
    from test_train_fakes import make_synth

    return make_synth(tmp_path_factory.mktemp("train_synth"))


def test_resume_falls_back_to_the_newest_valid_checkpoint(train_json, tmp_path):
    from spvis.engine import checkpointing as ckpt
    from test_train_fakes import tiny_cfg

    _trainer(tiny_cfg(train_json, tmp_path, MAX_ITER=4), resume=False, log=io.StringIO()).train()
    newest = tmp_path / "model_0000004.pth"
    assert ckpt.find_last_checkpoint(tmp_path) == newest and (tmp_path / "model_0000002.pth").is_file()
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a copy cut short
    log = io.StringIO()
    trainer = _trainer(tiny_cfg(train_json, tmp_path, MAX_ITER=6), resume=True, log=log)
    assert trainer.start_iter == 2 and trainer.resumed_from == tmp_path / "model_0000002.pth"
    printed = log.getvalue()
    assert "skipped a damaged checkpoint" in printed and "model_0000004.pth" in printed
    assert f"resumed from {tmp_path / 'model_0000002.pth'} at iteration 2" in printed
    assert trainer.train().iteration == 6
    (tmp_path / "model_0000002.pth").write_bytes(b"not a checkpoint")
    for path in tmp_path.glob("model_*.pth"):
        path.write_bytes(b"damaged")
    with pytest.raises(CheckpointError, match=r"model_0000006.pth.*no older checkpoint"):
        _trainer(tiny_cfg(train_json, tmp_path, MAX_ITER=8), resume=True, log=io.StringIO())


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
import torch
torch.set_num_threads(1)
from spvis.engine.distributed import init_distributed
from spvis.engine.launch import build_train_dataset
from spvis.engine.trainer import Trainer, setup_reproducibility
from test_train_fakes import TinyClipModel, tiny_cfg

cfg = tiny_cfg(Path({train_json!r}), Path({out!r}), MAX_ITER={max_iter}, CHECKPOINT_PERIOD=1000)
cfg.DATALOADER.NUM_WORKERS = 2
setup_reproducibility(cfg)
trainer = Trainer(cfg, TinyClipModel(), build_train_dataset(cfg), init_distributed("cpu"), resume={resume},
                  log_stream=sys.stderr)
result = trainer.train()
print("RESULT", result.stopped_by, result.iteration, flush=True)
"""


def _start_training(train_json: Path, out: Path, *, max_iter: int, resume: bool) -> subprocess.Popen:
    code = _CHILD.format(tests=str(TESTS), train_json=str(train_json), out=str(out), max_iter=max_iter, resume=resume)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)


def _wait_for_first_logged_iteration(out: Path, child: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    metrics = out / "metrics.jsonl"
    while not (metrics.is_file() and metrics.read_text().strip()):
        if child.poll() is not None or time.monotonic() > deadline:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            pytest.fail(f"no logged iteration: {child.communicate()}")
        time.sleep(0.05)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_sigterm_to_the_process_group_with_workers_saves_and_resumes(train_json, tmp_path):
    """`kill -TERM -<pgid>` (a cluster preemption) reaches the trainer and its two data workers at once: the
    workers must not die first; the trainer finishes its step, saves it and exits; --resume continues."""
    from spvis.engine import checkpointing as ckpt

    out = tmp_path / "run"
    child = _start_training(train_json, out, max_iter=10_000, resume=False)
    _wait_for_first_logged_iteration(out, child)
    os.killpg(child.pid, signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    assert "killed by signal" not in stderr and "received SIGTERM" in stderr
    stopped, done = stdout.split()[-2], int(stdout.split()[-1])
    assert stopped == "SIGTERM" and 1 <= done < 10_000
    last = ckpt.find_last_checkpoint(out)
    assert last == out / ckpt.checkpoint_name(done)
    assert ckpt.load_training_checkpoint(last)["iteration"] == done
    resumed = _start_training(train_json, out, max_iter=done + 2, resume=True)
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert f"resumed from {last} at iteration {done}" in stderr
    assert stdout.split()[-2:] == ["max_iter", str(done + 2)]


# ---------------------------------------------------------------------------------------------- 5. .pkl arrays
def test_pkl_with_an_object_array_is_one_line(tmp_path):
    from spvis.checkpoints.unpickler import read_state_dict

    path = tmp_path / "model_final.pkl"
    with path.open("wb") as handle:
        pickle.dump({"model": {"backbone.stem.conv1.weight": np.zeros((2, 2), np.float32),
                               "sem_seg_head.predictor.query_embed.weight": np.array([1, "x", None], dtype=object)}},
                    handle)
    with pytest.raises(CheckpointError, match=r"model_final.pkl: entry 'sem_seg_head.predictor.query_embed.weight' "
                                              r"is a numpy array of dtype object"):
        read_state_dict(path)
    path.write_bytes(pickle.dumps({"w": np.array(["a", "b"])}))
    with pytest.raises(CheckpointError, match=r"entry 'w' is a numpy array of dtype <U1"):
        read_state_dict(path)
