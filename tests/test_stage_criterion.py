"""Stage criteria (issue 22): built from the config next to the model, schedules driven by the iteration passed
in (guided matching, noise ramp), nothing stored on the model, the trainer passing the iteration through."""

from __future__ import annotations

import os

import pytest
import torch

from _tracker_fakes import FakeSegmenterModel, tiny_cfg, single_thread  # noqa: F401 (autouse fixture)
from spvis.modeling.stages import tracker_stage
from spvis.modeling.stages.refiner_stage import RefinerCriterion
from spvis.modeling.stages.stage_criterion import build_stage_criterion
from spvis.modeling.stages.tracker_stage import TrackerCriterion
from test_refiner_stage import T, FakeModel, _batch
from test_tracker_stage import _clip_targets
from test_train_fakes import TinyClipModel, make_synth, tiny_cfg as engine_cfg


def _plain_state(model: torch.nn.Module) -> dict:
    """Every plain attribute (not a parameter, buffer or child module) of every submodule, by value, and every
    buffer except norm running statistics: what a schedule hidden on the model would have to change. Comparing
    names only would miss a value written into an existing attribute (DVIS's ``self.iter``)."""
    import copy
    import inspect

    def by_value(value):  # a helper object (the tracker's noiser) compares by its attributes, not its identity
        if hasattr(value, "__dict__") and not isinstance(value, type) and not inspect.isroutine(value):
            return type(value).__name__, {k: by_value(v) for k, v in vars(value).items()}
        return value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)

    state = {}
    for prefix, module in model.named_modules():
        for name, value in vars(module).items():
            if not name.startswith("_") and not isinstance(value, (torch.nn.Module, torch.Tensor)):
                state[f"{prefix}.{name}"] = by_value(value)
        for name, buffer in module.named_buffers(recurse=False):
            if name not in ("running_mean", "running_var", "num_batches_tracked"):
                state[f"{prefix}.{name}"] = buffer.detach().clone()
    return state


def _same_state(before, after) -> bool:
    if isinstance(before, dict):
        return isinstance(after, dict) and before.keys() == after.keys() and all(
            _same_state(v, after[k]) for k, v in before.items())
    if isinstance(before, tuple):
        return isinstance(after, tuple) and len(before) == len(after) and all(map(_same_state, before, after))
    if isinstance(before, torch.Tensor):
        return isinstance(after, torch.Tensor) and torch.equal(before, after)
    return before == after


def test_plain_state_sees_a_value_written_into_a_submodule():
    _, model = _tracker_setup()
    before = _plain_state(model)
    assert _same_state(before, _plain_state(model))
    model.tracker.noiser.ratio = model.tracker.noiser.ratio + 0.1  # an existing attribute, a new value
    assert not _same_state(before, _plain_state(model))
    model.tracker.noiser.ratio -= 0.1
    model.tracker.step_seen = 3  # a new attribute deep in the model
    assert not _same_state(before, _plain_state(model))


def _tracker_setup():
    cfg = tiny_cfg()
    cfg.STAGE = "tracker"
    cfg.INPUT.SAMPLING_FRAME_NUM = 4
    cfg.MODEL.LOSS.TRAIN_NUM_POINTS = 64
    cfg.MODEL.TRACKER.NOISE_MODE, cfg.MODEL.TRACKER.NOISE_RATIO, cfg.MODEL.TRACKER.NOISE_WARMUP = "wa", 0.8, 0.25
    cfg.MODEL.TRACKER.GUIDED_MATCHING = 0.5
    return cfg, FakeSegmenterModel(cfg).train()


def test_tracker_schedules_follow_the_iteration_passed_in(monkeypatch):
    cfg, model = _tracker_setup()
    criterion = build_stage_criterion(cfg)
    assert isinstance(criterion, TrackerCriterion)
    # guided matching on before GUIDED_MATCHING * max_iter, off from there on
    assert [criterion.guided(i, 100) for i in (0, 49, 50, 99)] == [True, True, False, False]
    # the noise probability ramps 0 -> NOISE_RATIO over the first NOISE_WARMUP of training, then stays
    ratios = [criterion.noise_ratio(i, 100) for i in (0, 10, 25, 60, 99)]
    assert ratios == pytest.approx([0.0, 0.8 * 10 / 25, 0.8, 0.8, 0.8])

    guided_calls, noise_seen = [], []
    real_slot_order = tracker_stage.in_slot_order
    monkeypatch.setattr(tracker_stage, "in_slot_order",  # called only to match on the segmenter (guided)
                        lambda x, idx: guided_calls.append(1) or real_slot_order(x, idx))
    real_should_noise = model.tracker.noiser.should_noise
    monkeypatch.setattr(model.tracker.noiser, "should_noise",
                        lambda ratio=None: noise_seen.append(ratio) or real_should_noise(ratio))
    state = _plain_state(model)
    keys = set(model.state_dict())
    configured = model.tracker.noiser.ratio
    images = torch.randn(4, 3, 32, 32)
    for iteration in (0, 10, 60):
        guided_calls.clear()
        noise_seen.clear()
        torch.manual_seed(0)
        criterion(model, images, [_clip_targets(4)], 4, iteration, 100)
        assert bool(guided_calls) == criterion.guided(iteration, 100), iteration
        assert noise_seen and set(noise_seen) == {criterion.noise_ratio(iteration, 100)}, (iteration, noise_seen)
    # the schedule reached the tracker as an argument: no attribute anywhere in the model was set or changed
    assert _same_state(state, _plain_state(model)) and set(model.state_dict()) == keys
    assert model.tracker.noiser.ratio == configured
    assert not hasattr(model, "train_progress")


def test_refiner_guided_matching_follows_the_iteration_passed_in():
    model = FakeModel().train()
    model.cfg.MODEL.REFINER.GUIDED_MATCHING = 0.3
    criterion = RefinerCriterion.from_config(model.cfg)
    assert [criterion.guided(i, 10) for i in (0, 2, 3, 9)] == [True, True, False, False]
    images, targets = _batch()
    matcher = criterion.set_criterion(T).matcher
    seen = []
    real_forward = matcher.forward
    matcher.forward = lambda outputs, tgts: seen.append(outputs["pred_logits"]) or real_forward(outputs, tgts)
    with torch.no_grad():
        tracker_logits = model.tracker.classify(torch.tanh(model.tracker.mix(
            model.sem_seg_head(images)["pred_embds"].reshape(2, T, *model.sem_seg_head.queries.shape))))
    state = _plain_state(model)
    for iteration in (2, 3):
        seen.clear()
        criterion(model, images, targets, T, iteration, 10)
        on_tracker = torch.allclose(seen[0], tracker_logits.mean(1))  # the frozen tracker's video-level logits
        assert on_tracker == criterion.guided(iteration, 10), iteration
        assert len(seen) == (1 if on_tracker else 2)  # guided: one matching for both layers; else one per layer
    assert _same_state(state, _plain_state(model))


def test_model_owns_its_stage_criterion_without_checkpoint_keys():
    from test_segmenter_model import tiny_cfg as segmenter_cfg
    from spvis.modeling.meta_arch import SPVISModel

    cfg = segmenter_cfg()
    model = SPVISModel.from_config(cfg)
    assert type(model.criterion).__name__ == "SegmenterCriterion"
    assert "criterion" not in dict(model.named_children())
    assert not [k for k in model.state_dict() if "criterion" in k or "matcher" in k]
    assert not hasattr(model, "stage_cache") and not hasattr(model, "train_progress")


def test_trainer_passes_the_iteration_to_every_forward(tmp_path):
    from spvis.engine.distributed import init_distributed
    from spvis.engine.launch import build_train_dataset
    from spvis.engine.trainer import Trainer

    class Recording(TinyClipModel):
        def forward(self, batch, *, iteration=0, max_iter=1):
            self.seen.append((iteration, max_iter))
            return super().forward(batch, iteration=iteration, max_iter=max_iter)

    cfg = engine_cfg(make_synth(tmp_path / "synth"), tmp_path / "out", MAX_ITER=3, CHECKPOINT_PERIOD=0)
    model = Recording()
    model.seen = []
    Trainer(cfg, model, build_train_dataset(cfg), init_distributed("cpu"), log_stream=open(os.devnull, "w"),
            install_signal_handlers=False).train()
    assert model.seen == [(i, 3) for i in range(3) for _ in range(2)]  # 2 micro-batches per step
