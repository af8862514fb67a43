"""Progressive (gated) reference, PGT part 2: r_t = g * q_{t-1} + (1 - g) * m.

g = sigmoid(W [q_{t-1}; m; q_{t-1} - m] + b) per channel. b starts at +4 and W at 0, so a fresh gate
gives r ~= q_{t-1} (the DVIS reference) and training decides how much to lean on the long-term memory.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

GATE_INIT_BIAS = 4.0  # sigmoid(4) = 0.982: start close to the DVIS reference


class ProgressiveReferenceGate(nn.Module):
    """Blends the previous track query with the track's stable memory embedding."""

    def __init__(self, hidden_dim: int):
        super().__init__()
        self.proj = nn.Linear(3 * hidden_dim, hidden_dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.constant_(self.proj.bias, GATE_INIT_BIAS)

    def forward(self, previous: Tensor, stable: Tensor, stable_valid: Tensor) -> Tensor:
        """previous, stable (Q, B, C), stable_valid (Q, B) bool -> reference (Q, B, C).

        Slots without a stable embedding keep the previous query unchanged.
        """
        gate = torch.sigmoid(self.proj(torch.cat([previous, stable, previous - stable], dim=-1)))
        blended = gate * previous + (1 - gate) * stable
        return torch.where(stable_valid.unsqueeze(-1), blended, previous)
