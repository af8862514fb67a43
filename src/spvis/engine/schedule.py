"""Learning-rate schedule: linear warm-up, then multi-step or poly decay (detectron2 / Mask2Former rules), or a
cosine to zero at MAX_ITER for a fixed training budget.

The factor is a pure function of the iteration, so a resumed run only needs the iteration (stored in the
scheduler's state dict) to continue on the same curve.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Sequence

import torch

from spvis.errors import ConfigError


def lr_factor(iteration: int, *, max_iter: int, kind: str = "step", steps: Sequence[int] = (), gamma: float = 0.1,
              poly_power: float = 0.9, warmup_iters: int = 0, warmup_factor: float = 1.0) -> float:
    """Multiplier of the base LR at ``iteration`` (0-based optimiser step)."""
    if kind == "step":
        decay = gamma ** bisect.bisect_right(sorted(steps), iteration)
    elif kind == "poly":
        decay = (1.0 - min(iteration, max_iter) / float(max_iter)) ** poly_power
    elif kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * min(iteration, max_iter) / float(max_iter)))
    else:
        raise ConfigError(f"config key SOLVER.LR_SCHEDULER must be 'step', 'poly' or 'cosine', got {kind!r}")
    if iteration < warmup_iters:
        alpha = iteration / float(warmup_iters)
        decay *= warmup_factor * (1.0 - alpha) + alpha
    return decay


class WarmupDecaySchedule:
    """Picklable-free callable for ``LambdaLR`` (its state dict stores only numbers)."""

    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs

    def __call__(self, iteration: int) -> float:
        return lr_factor(iteration, **self.kwargs)


def build_lr_scheduler(cfg: Any, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` stepping once per optimiser step, from cfg.SOLVER."""
    check_schedule(cfg)
    s = cfg.SOLVER
    schedule = WarmupDecaySchedule(max_iter=int(s.MAX_ITER), kind=s.LR_SCHEDULER, steps=list(s.STEPS),
                                   gamma=float(s.GAMMA), poly_power=float(s.POLY_POWER),
                                   warmup_iters=int(s.WARMUP_ITERS), warmup_factor=float(s.WARMUP_FACTOR))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=schedule)


def check_schedule(cfg: Any) -> None:
    """ConfigError for schedule settings that cannot run; ``spvis train`` calls it before OUTPUT_DIR is touched,
    so that a refused run leaves no files behind."""
    s = cfg.SOLVER
    if s.MAX_ITER < 1:
        raise ConfigError(f"config key SOLVER.MAX_ITER must be at least 1, got {s.MAX_ITER}")
    if s.WARMUP_ITERS < 0 or not 0.0 <= s.WARMUP_FACTOR <= 1.0:
        raise ConfigError("config keys SOLVER.WARMUP_ITERS must be >= 0 and SOLVER.WARMUP_FACTOR in [0, 1], got "
                          f"{s.WARMUP_ITERS} and {s.WARMUP_FACTOR}")
    if any(not isinstance(x, int) or x < 0 for x in s.STEPS):
        raise ConfigError(f"config key SOLVER.STEPS must be a list of non-negative integers, got {s.STEPS}")
