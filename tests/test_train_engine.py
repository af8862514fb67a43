"""Training engine: loss falls, bitwise determinism, kill-and-resume == uninterrupted, checkpoint safety."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from spvis.engine import checkpointing as ckpt
from spvis.errors import CheckpointError, ConfigError, SpvisError
from test_train_fakes import TinyClipModel, make_synth, run_fake_training, tiny_cfg


@pytest.fixture(scope="module")
def train_json(tmp_path_factory) -> Path:
    return make_synth(tmp_path_factory.mktemp("synth"))


def _losses(output_dir: Path) -> list[dict]:
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def _weights(trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_loss_falls(train_json, tmp_path):
    cfg = tiny_cfg(train_json, tmp_path, MAX_ITER=40, STEPS=[35], CHECKPOINT_PERIOD=0)
    _, result = run_fake_training(cfg)
    totals = [e["total_loss"] for e in _losses(tmp_path)]
    assert len(totals) == 40 and result.iteration == 40
    first, last = sum(totals[:5]) / 5, sum(totals[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert (tmp_path / "model_final.safetensors").is_file() and (tmp_path / "model_final.yaml").is_file()


def test_same_seed_same_losses_bit_for_bit(train_json, tmp_path):
    runs = []
    for name in ("a", "b"):
        trainer, _ = run_fake_training(tiny_cfg(train_json, tmp_path / name, MAX_ITER=3))
        runs.append((_losses(tmp_path / name), _weights(trainer)))
    (la, wa), (lb, wb) = runs
    assert [{k: v for k, v in e.items() if k not in ("time", "cpu_time")} for e in la] == \
           [{k: v for k, v in e.items() if k not in ("time", "cpu_time")} for e in lb]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    trainer, _ = run_fake_training(_with_seed(tiny_cfg(train_json, tmp_path / "c", MAX_ITER=3), 5))
    assert not all(torch.equal(wa[k], trainer.model.state_dict()[k]) for k in wa)


def _with_seed(cfg, seed):
    cfg.SEED = seed
    return cfg


def test_sigterm_then_resume_equals_uninterrupted(train_json, tmp_path):
    full, _ = run_fake_training(tiny_cfg(train_json, tmp_path / "full"))
    # 2 micro-batches per step: call 3 is inside iteration 2, so the run stops after 2 of 4 iterations.
    _, stopped = run_fake_training(tiny_cfg(train_json, tmp_path / "cut"), sigterm_at_call=3)
    assert stopped.stopped_by == "SIGTERM" and stopped.iteration == 2
    assert ckpt.find_last_checkpoint(tmp_path / "cut").name == "model_0000002.pth"
    assert not (tmp_path / "cut" / "model_final.safetensors").exists()
    resumed, result = run_fake_training(tiny_cfg(train_json, tmp_path / "cut"), resume=True)
    assert result.iteration == 4 and resumed.start_iter == 2
    wf, wr = _weights(full), _weights(resumed)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    strip = lambda es: [{k: v for k, v in e.items() if k not in ("time", "cpu_time")} for e in es]  # noqa: E731
    assert strip(_losses(tmp_path / "full")) == strip(_losses(tmp_path / "cut"))
    # optimizer state and LR schedule continued too
    assert full.scheduler.state_dict()["last_epoch"] == resumed.scheduler.state_dict()["last_epoch"] == 4


def test_checkpoint_loads_weights_only_and_corrupt_file_is_one_line_error(train_json, tmp_path):
    run_fake_training(tiny_cfg(train_json, tmp_path, MAX_ITER=2))
    path = ckpt.find_last_checkpoint(tmp_path)
    data = torch.load(path, weights_only=True)
    assert data["iteration"] == 2 and data["stage"] == "segmenter" and "rng" in data and "SOLVER" in data["config"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=path.name):
        run_fake_training(tiny_cfg(train_json, tmp_path, MAX_ITER=3), resume=True)


def test_resume_refuses_checkpoint_of_another_stage(train_json, tmp_path):
    run_fake_training(tiny_cfg(train_json, tmp_path, MAX_ITER=2))
    cfg = tiny_cfg(train_json, tmp_path, MAX_ITER=3)
    cfg.STAGE = "tracker"
    with pytest.raises(CheckpointError, match="stage 'segmenter'"):
        run_fake_training(cfg, resume=True)


def test_failed_save_keeps_previous_checkpoint(train_json, tmp_path, monkeypatch):
    trainer, _ = run_fake_training(tiny_cfg(train_json, tmp_path, MAX_ITER=2))
    before = ckpt.find_last_checkpoint(tmp_path).read_bytes()

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(OSError):
        trainer.save_checkpoint(2)
    assert ckpt.find_last_checkpoint(tmp_path).read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_non_finite_loss_raises_with_loss_dict(train_json, tmp_path, monkeypatch):
    nan = {"loss_mask": torch.tensor(float("nan"), requires_grad=True)}
    monkeypatch.setattr(TinyClipModel, "forward", lambda self, batch, **schedule: nan)
    with pytest.raises(SpvisError, match=r"non-finite loss at iteration 0 .*'loss_mask': nan"):
        run_fake_training(tiny_cfg(train_json, tmp_path))


def test_global_batch_must_split_over_devices(train_json, tmp_path):
    with pytest.raises(ConfigError, match="SOLVER.IMS_PER_BATCH=5"):
        run_fake_training(tiny_cfg(train_json, tmp_path, IMS_PER_BATCH=5))


def test_stage_weights_chain_and_wrong_architecture_is_named(tmp_path):
    from spvis.config import get_cfg

    cfg = get_cfg()
    seg = torch.nn.ModuleDict({"backbone": torch.nn.Linear(2, 3)})
    ckpt.save_weights(tmp_path / "seg.safetensors", seg, cfg)
    chained = torch.nn.ModuleDict({"backbone": torch.nn.Linear(2, 3), "tracker": torch.nn.Linear(3, 3)})
    missing = ckpt.load_initial_weights(chained, tmp_path / "seg.safetensors", stage="tracker")
    assert missing == ["tracker.bias", "tracker.weight"]
    assert torch.equal(chained["backbone"].weight, seg["backbone"].weight)
    other = torch.nn.ModuleDict({"backbone": torch.nn.Linear(2, 4), "tracker": torch.nn.Linear(3, 3)})
    with pytest.raises(CheckpointError, match=r"backbone.weight \(checkpoint \[3, 2\] vs model \[4, 2\]\)"):
        ckpt.load_initial_weights(other, tmp_path / "seg.safetensors", stage="tracker")
    refiner_only = torch.nn.ModuleDict({"backbone": torch.nn.Linear(2, 3), "sem_seg_head": torch.nn.Linear(3, 3)})
    with pytest.raises(CheckpointError, match="2 missing: .*sem_seg_head.bias"):
        ckpt.load_initial_weights(refiner_only, tmp_path / "seg.safetensors", stage="refiner")
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_initial_weights(chained, tmp_path / "nope.safetensors", stage="tracker")


def test_metrics_log_truncates_after_resume_point(tmp_path):
    from spvis.engine.logging_utils import MetricsLog

    log = MetricsLog(tmp_path)
    for i in range(1, 6):
        log.write({"iteration": i, "total_loss": 1.0 / i})
    with open(log.path, "a") as handle:
        handle.write('{"iteration": 6, "tot')  # cut by a kill
    log.truncate_after(3)
    assert [json.loads(x)["iteration"] for x in log.path.read_text().splitlines()] == [1, 2, 3]
    assert math.isclose(json.loads(log.path.read_text().splitlines()[-1])["total_loss"], 1 / 3)


def test_keep_checkpoints_prunes_old_ones(train_json, tmp_path):
    cfg = tiny_cfg(train_json, tmp_path, MAX_ITER=4, CHECKPOINT_PERIOD=1)
    cfg.SOLVER.KEEP_CHECKPOINTS = 2
    run_fake_training(cfg)
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == ["model_0000003.pth", "model_0000004.pth"]
    assert ckpt.find_last_checkpoint(tmp_path).name == "model_0000004.pth"
