"""Exponential moving average of a model's weights (SOLVER.EMA_DECAY), the short-budget recipe's evaluation model.

On a fixed budget the last iterate is noisy; the average of the last few hundred iterates is a better model at no
training cost (Polyak averaging, as timm's ModelEmaV2 and the CIFAR-10 speedruns use). The average covers every
floating-point entry of the state dict (parameters and buffers; frozen entries stay equal to the model's), uses a
warm-up ``min(decay, (1 + t) / (10 + t))`` so that early averages are not dominated by the random init, and is
what evaluation, ``model_final`` and exported checkpoints use.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


class WeightEMA:
    """The averaged state of ``model`` (held on the model's device, outside autograd)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def effective_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (once per optimiser step)."""
        d = self.effective_decay()
        floats_avg, floats_new = [], []
        for k, v in model.state_dict().items():
            avg = self.state[k]
            if avg.is_floating_point():
                floats_avg.append(avg)
                floats_new.append(v.detach())
            else:
                avg.copy_(v)
        if floats_avg:
            torch._foreach_lerp_(floats_avg, floats_new, 1.0 - d)  # avg += (1 - d) * (new - avg)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "state": self.state}

    def load_state_dict(self, data: dict) -> None:
        self.updates = int(data["updates"])
        for k, v in data["state"].items():
            if k in self.state:
                self.state[k].copy_(v)

    @contextlib.contextmanager
    def swapped_into(self, model: nn.Module) -> Iterator[nn.Module]:
        """Run a block with the averaged weights loaded into ``model``; the trained weights come back after."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(backup)
