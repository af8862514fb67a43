"""DVIS++ denoising training: corrupt the tracker's layer-0 identity so it must rely on the reference."""

from __future__ import annotations

import torch
from torch import Tensor

from spvis.errors import ConfigError

NOISE_MODES = ("none", "wa", "rs", "cc")


class QueryNoiser:
    """Builds the noisy layer-0 identity for one frame (reference §2, DVIS++ ``Noiser``).

    Modes: ``wa`` w*own + (1-w)*partner with w ~ U(0, 1) per slot; ``rs`` the partner itself (random
    shuffle); ``cc`` a per-channel random splice of own and partner. ``own`` are the *unmatched* current
    queries, as in DVIS++. The returned bookkeeping index names the query each slot mostly holds
    (the partner when w < 0.5, or when more than half of the channels come from it).
    """

    def __init__(self, mode: str, ratio: float, generator: torch.Generator | None = None):
        if mode not in NOISE_MODES:
            raise ConfigError(f"MODEL.TRACKER.NOISE_MODE: unknown mode {mode!r}; expected one of {NOISE_MODES}")
        self.mode = mode
        self.ratio = float(ratio)
        self.generator = generator

    def _rand(self, *shape: int, device: torch.device) -> Tensor:
        return torch.rand(*shape, generator=self.generator).to(device)

    def should_noise(self, ratio: float | None = None) -> bool:
        """Draw whether this frame is noised: probability ``ratio`` (the training schedule's value, passed by the
        tracker stage), else the configured NOISE_RATIO; never in mode 'none'."""
        ratio = self.ratio if ratio is None else float(ratio)
        return self.mode != "none" and float(torch.rand(1, generator=self.generator)) < ratio

    def __call__(self, cur: Tensor) -> tuple[Tensor, Tensor]:
        """cur (Q, B, C) -> (noisy identity (Q, B, C), bookkeeping indices (B, Q) int64)."""
        num_queries, batch, channels = cur.shape
        perm = torch.stack([torch.randperm(num_queries, generator=self.generator) for _ in range(batch)])
        perm = perm.to(cur.device)  # (B, Q)
        index = perm.t().unsqueeze(-1).expand(-1, -1, channels)
        partner = torch.gather(cur, 0, index)  # (Q, B, C)
        own_index = torch.arange(num_queries, device=cur.device).expand(batch, -1)  # (B, Q)
        if self.mode == "rs":
            return partner, perm
        if self.mode == "wa":
            weight = self._rand(num_queries, batch, 1, device=cur.device)  # (Q, B, 1)
            noisy = weight * cur + (1 - weight) * partner
            keeps_own = (weight[..., 0] >= 0.5).t()  # (B, Q)
            return noisy, torch.where(keeps_own, own_index, perm)
        # cc: channel-wise splice
        take_own = self._rand(num_queries, batch, channels, device=cur.device) < 0.5  # (Q, B, C)
        noisy = torch.where(take_own, cur, partner)
        keeps_own = (take_own.float().mean(-1) >= 0.5).t()
        return noisy, torch.where(keeps_own, own_index, perm)
