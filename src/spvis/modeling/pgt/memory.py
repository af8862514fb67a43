"""Per-slot track memory: a FIFO of recent confident outputs and a gated stable embedding (PGT part 1).

The stable embedding m is updated only while the track is confidently visible,
m <- (1 - b) m + b q_t with b = clamp(mean cos(q_t, FIFO), 0, 1) (CTVIS / DVIS-DAQ similarity guidance),
so an occluded or drifting query does not overwrite the long-term identity. Everything is detached
(stop-gradient) and has a fixed size: (M, Q, B, C) + (Q, B, C), independent of video length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class TrackMemory:
    fifo: Tensor  # (M, Q, B, C) most recent last
    fifo_valid: Tensor  # (M, Q, B) bool
    stable: Tensor  # (Q, B, C)
    stable_valid: Tensor  # (Q, B) bool

    @classmethod
    def empty(cls, size: int, like: Tensor) -> "TrackMemory":
        """An empty memory shaped after ``like`` (Q, B, C)."""
        num_queries, batch, channels = like.shape
        return cls(
            fifo=like.new_zeros(size, num_queries, batch, channels),
            fifo_valid=torch.zeros(size, num_queries, batch, dtype=torch.bool, device=like.device),
            stable=like.new_zeros(num_queries, batch, channels),
            stable_valid=torch.zeros(num_queries, batch, dtype=torch.bool, device=like.device),
        )

    def update(self, query: Tensor, confident: Tensor) -> None:
        """Push ``query`` (Q, B, C) into the FIFO and blend it into m where ``confident`` (Q, B)."""
        query = query.detach()
        sims = F.cosine_similarity(self.fifo, query.unsqueeze(0), dim=-1)  # (M, Q, B)
        counts = self.fifo_valid.sum(0)  # (Q, B)
        mean_sim = (sims * self.fifo_valid).sum(0) / counts.clamp(min=1)
        beta = torch.where(counts > 0, mean_sim.clamp(0, 1), torch.ones_like(mean_sim))  # (Q, B)
        beta = torch.where(self.stable_valid, beta, torch.ones_like(beta)).unsqueeze(-1)
        blended = (1 - beta) * self.stable + beta * query
        self.stable = torch.where(confident.unsqueeze(-1), blended, self.stable)
        self.stable_valid = self.stable_valid | confident
        shifted = torch.cat([self.fifo[1:], query.unsqueeze(0)])
        shifted_valid = torch.cat([self.fifo_valid[1:], torch.ones_like(self.fifo_valid[:1])])
        self.fifo = torch.where(confident.unsqueeze(-1), shifted, self.fifo)
        self.fifo_valid = torch.where(confident, shifted_valid, self.fifo_valid)

    def _copy_on_write(self) -> None:
        """Fresh tensors before an in-place edit: the previous ones may be saved for backward (gated reference)."""
        self.fifo, self.fifo_valid = self.fifo.clone(), self.fifo_valid.clone()
        self.stable, self.stable_valid = self.stable.clone(), self.stable_valid.clone()

    def reset_slot(self, slot: int, batch_index: int) -> None:
        """Forget slot ``slot`` of clip ``batch_index`` (a new track starts there)."""
        self._copy_on_write()
        self.fifo_valid[:, slot, batch_index] = False
        self.stable_valid[slot, batch_index] = False

    def install(self, slot: int, batch_index: int, stable: Tensor) -> None:
        """Give slot ``slot`` a revived track's stable embedding (C,) and an empty FIFO."""
        self.reset_slot(slot, batch_index)  # copies first
        self.stable[slot, batch_index] = stable
        self.stable_valid[slot, batch_index] = True

    def permute_slots(self, batch_index: int, source_slots: Tensor) -> None:
        """Slot s of clip ``batch_index`` takes the memory of slot ``source_slots[s]`` (Q,) int64."""
        self._copy_on_write()
        b = batch_index
        self.fifo[:, :, b] = self.fifo[:, source_slots, b]
        self.fifo_valid[:, :, b] = self.fifo_valid[:, source_slots, b]
        self.stable[:, b] = self.stable[source_slots, b]
        self.stable_valid[:, b] = self.stable_valid[source_slots, b]

    def detached(self) -> "TrackMemory":
        """A copy cut from the autograd graph (stop-gradient between training clips)."""
        return TrackMemory(self.fifo.detach().clone(), self.fifo_valid.clone(),
                           self.stable.detach().clone(), self.stable_valid.clone())
