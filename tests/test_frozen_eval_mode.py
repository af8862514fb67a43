"""Frozen parts run in eval mode in every training stage (issue 22: the refiner stage ran the "frozen"
backbone in train mode, so Swin's stochastic depth (DROP_PATH_RATE) ran inside the frozen segmenter)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spvis.config import load_config
from spvis.engine.launch import build_model, build_train_dataset
from spvis.data.clip_dataset import collate_clips
from test_train_fakes import make_synth
from test_train_recipe import TINY

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synth"
FROZEN = {"segmenter": (), "tracker": ("backbone", "sem_seg_head"), "refiner": ("backbone", "sem_seg_head", "tracker")}


@pytest.fixture(scope="module")
def train_json(tmp_path_factory) -> Path:
    return make_synth(tmp_path_factory.mktemp("synth"))


@pytest.mark.parametrize("stage", ["segmenter", "tracker", "refiner"])
def test_every_frozen_module_is_in_eval_mode_during_the_stage_forward(stage, train_json):
    cfg = load_config(str(CONFIGS / f"{stage}.yaml"), [*TINY, f"DATASETS.TRAIN=[{train_json}]", "MODEL.WEIGHTS=",
                                                      "INPUT.SAMPLING_FRAME_NUM=2"])
    model = build_model(cfg)
    model.train()  # what the trainer calls before every step
    seen: dict[str, bool] = {}
    for child in FROZEN[stage]:
        for name, module in getattr(model, child).named_modules(prefix=child):
            module.register_forward_pre_hook(lambda m, _inputs, name=name: seen.__setitem__(name, m.training))
    trained = [m for n, m in model.named_children() if n not in FROZEN[stage]]
    batch = collate_clips([build_train_dataset(cfg)[i] for i in range(2)])
    losses = model(batch)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    if FROZEN[stage]:
        assert seen, "no frozen module ran"
        assert not [name for name, training in seen.items() if training], "frozen modules ran in train mode"
    assert all(m.training for m in trained), "the stage's own modules must stay in train mode"
    model.train()  # a second call (the next step) must not bring a frozen part back to train mode
    assert not [n for c in FROZEN[stage] for n, m in getattr(model, c).named_modules() if m.training]
