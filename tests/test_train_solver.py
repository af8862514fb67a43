"""Optimiser groups, LR schedule, batch plan and `spvis train` config errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spvis.config import get_cfg
from spvis.engine.optim import build_optimizer, clip_full_model_grad
from spvis.engine.schedule import build_lr_scheduler, lr_factor
from spvis.engine.trainer import BatchPlan, EpochShuffle
from spvis.errors import ConfigError


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        self.sem_seg_head = nn.Linear(4, 4)
        self.query_embed = nn.Embedding(3, 4)
        self.norm = nn.LayerNorm(4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_param_groups_follow_mask2former_rules():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR, cfg.SOLVER.BACKBONE_MULTIPLIER, cfg.SOLVER.WEIGHT_DECAY = 1e-4, 0.1, 0.05
    opt = build_optimizer(cfg, _Net())
    groups = {g["name"]: g for g in opt.param_groups}
    assert "frozen.weight" not in groups and len(groups) == 9
    assert groups["backbone.0.weight"]["lr"] == pytest.approx(1e-5) and groups["backbone.0.weight"]["weight_decay"] == 0.05
    assert groups["backbone.1.weight"]["weight_decay"] == 0.0 and groups["backbone.1.bias"]["lr"] == pytest.approx(1e-5)
    assert groups["sem_seg_head.weight"]["lr"] == 1e-4 and groups["sem_seg_head.weight"]["weight_decay"] == 0.05
    assert groups["query_embed.weight"]["weight_decay"] == 0.0 and groups["norm.bias"]["weight_decay"] == 0.0


def test_no_trainable_parameters_is_a_config_error():
    net = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        build_optimizer(get_cfg(), net)


def test_lr_schedule_warmup_step_and_poly():
    kw = dict(max_iter=100, steps=[50, 80], gamma=0.1, warmup_iters=10, warmup_factor=0.001)
    assert lr_factor(0, **kw) == pytest.approx(0.001)
    assert lr_factor(5, **kw) == pytest.approx(0.001 * 0.5 + 0.5)
    assert lr_factor(10, **kw) == 1.0 and lr_factor(49, **kw) == 1.0
    assert lr_factor(50, **kw) == pytest.approx(0.1) and lr_factor(80, **kw) == pytest.approx(0.01)
    assert lr_factor(50, max_iter=100, kind="poly", poly_power=0.9) == pytest.approx(0.5 ** 0.9)
    assert lr_factor(100, max_iter=100, kind="poly") == 0.0
    cfg = get_cfg()
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS, cfg.SOLVER.WARMUP_ITERS = 4, [2], 0
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1.0)
    sched = build_lr_scheduler(cfg, opt)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([1.0, 1.0, 0.1, 0.1])
    state = sched.state_dict()
    torch.save(state, buf := __import__("io").BytesIO())
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["last_epoch"] == 4


def test_batch_plan_is_independent_of_world_size():
    one, two = BatchPlan(8, 2, 1), BatchPlan(8, 2, 2)
    assert one.local_micro_batches == 4 and two.local_micro_batches == 2
    samples_one = [one.sample_ids(3, one.global_micro_index(0, k)) for k in range(4)]
    samples_two = [two.sample_ids(3, two.global_micro_index(r, k)) for r in range(2) for k in range(2)]
    assert sorted(samples_one) == sorted(samples_two) == [[24, 25], [26, 27], [28, 29], [30, 31]]
    with pytest.raises(ConfigError, match="multiple of SOLVER.CLIPS_PER_DEVICE"):
        BatchPlan(6, 2, 2).check()


def test_epoch_shuffle_visits_every_item_once_per_epoch():
    shuffle = EpochShuffle(5, seed=0)
    epoch0 = [shuffle(i) for i in range(5)]
    epoch1 = [shuffle(i) for i in range(5, 10)]
    assert sorted(epoch0) == [0, 1, 2, 3, 4] and sorted(epoch1) == [5, 6, 7, 8, 9]
    # a fresh permutation per epoch: not the identity, and not the same order again in the next epochs
    orders = [tuple(shuffle(e * 5 + i) % 5 for i in range(5)) for e in range(4)]
    assert orders[0] != (0, 1, 2, 3, 4) and len(set(orders)) == 4
    # the same seed gives the same stream whatever the call order (resume); another seed another one
    again = EpochShuffle(5, seed=0)
    assert [again(i) for i in (17, 3, 9, 0)] == [shuffle(17), epoch0[3], epoch1[4], epoch0[0]]
    assert [EpochShuffle(5, seed=1)(i) for i in range(10)] != epoch0 + epoch1


def test_full_model_grad_clip():
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(4))
    a.grad, b.grad = torch.full((3,), 3.0), torch.full((4,), 4.0)
    norm = clip_full_model_grad([a, b], 1.0)
    assert norm == pytest.approx((27 + 64) ** 0.5)
    assert float(torch.cat([a.grad, b.grad]).norm()) == pytest.approx(1.0, rel=1e-4)


def test_cli_reports_bad_override_and_missing_dataset_in_one_line(tmp_path, capsys):
    from spvis.cli.main import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("SOLVER:\n  MAX_ITER: 2\n")
    assert main(["train", "--config", str(cfg), "SOLVER.MAX_ITR=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SOLVER.MAX_ITR" in err[0] and "MAX_ITER" in err[0]
    assert main(["train", "--config", str(cfg), "SOLVER.BASE_LR=fast"]) == 2
    assert "SOLVER.BASE_LR expects a number" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "MODEL.DEVICE=cpu", f"DATASETS.TRAIN=[{tmp_path}/none.json]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.json" in err[0] and "not found" in err[0]
    assert main(["train", "--config", str(cfg), "MODEL.DEVICE=cpu"]) == 2
    assert "DATASETS.TRAIN is empty" in capsys.readouterr().err


def test_each_stage_trains_only_its_module():
    from spvis.engine.optim import freeze_for_stage

    def net():
        return nn.ModuleDict({"backbone": nn.Linear(2, 2), "sem_seg_head": nn.Linear(2, 2),
                              "tracker": nn.Linear(2, 2), "refiner": nn.Linear(2, 2)})

    trainable = {}
    for stage in ("segmenter", "tracker", "refiner"):
        model = net()
        freeze_for_stage(model, stage)
        trainable[stage] = sorted({n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad})
    assert trainable == {"segmenter": ["backbone", "sem_seg_head"], "tracker": ["tracker"], "refiner": ["refiner"]}


def test_device_and_threads_settings():
    from spvis.engine.distributed import init_distributed, resolve_device
    from spvis.engine.trainer import configure_threads

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="MODEL.DEVICE is 'cuda'"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="MODEL.DEVICE must be"):
        resolve_device("tpu")
    before = torch.get_num_threads()
    try:
        configure_threads(init_distributed("cpu"), 1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
