"""One loss object per training stage, built from the config next to the model (DETR's ``build`` pattern).

``build_stage_criterion(cfg)(model, images, targets, clip_len, iteration, max_iter) -> weighted loss dict``.
A stage criterion owns everything its loss needs besides the model: SetCriterion(s) with their matcher, the
schedules (guided matching, noise ramp, points per clip length) and the frozen-segmenter disk cache. It is
not an nn.Module child of the model, so it adds no checkpoint keys; the schedules are functions of the
iteration passed in, so nothing about training progress is stored anywhere.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from torch import Tensor, nn

from spvis.errors import ConfigError

_CRITERIA = {
    "segmenter": ("spvis.modeling.stages.segmenter_stage", "SegmenterCriterion"),
    "tracker": ("spvis.modeling.stages.tracker_stage", "TrackerCriterion"),
    "refiner": ("spvis.modeling.stages.refiner_stage", "RefinerCriterion"),
}


class StageCriterion(Protocol):
    """What ``SPVISModel.forward`` calls: the weighted losses of one training step."""

    def __call__(self, model: nn.Module, images: Tensor, targets: list[dict], clip_len: int, iteration: int,
                 max_iter: int) -> dict[str, Tensor]:
        """images (B*T, 3, Hp, Wp) normalised and padded; targets per clip {labels (N,), ids (N,),
        masks (N, T, Hp, Wp) float, present (N, T) bool}; iteration of max_iter drives the schedules."""
        ...


def build_stage_criterion(cfg) -> StageCriterion:
    """The criterion of training stage ``cfg.STAGE`` (segmenter | tracker | refiner)."""
    entry = _CRITERIA.get(cfg.STAGE)
    if entry is None:
        raise ConfigError(f"STAGE: unknown training stage {cfg.STAGE!r} (choose from {sorted(_CRITERIA)})")
    module, name = entry
    return getattr(importlib.import_module(module), name).from_config(cfg)
