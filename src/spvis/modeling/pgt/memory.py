"""Per-slot track memory: a FIFO of recent confident outputs and a long-term stable embedding (PGT part 1).

The stable embedding m is an exponential moving average with a small, quality-gated rate:
m <- (1 - b) m + b q_t with b = MEMORY_RATE * s_t, where s_t is the track's class confidence on that frame,
and only on frames where the track is confidently visible and q_t still resembles m
(cos(q_t, m) >= MEMORY_SIM_GATE); the first confident frame sets m = q_t. A rate of 0.1-0.2 makes m a
summary of the last ~5-10 confident frames, so an occluded, drifting or hijacked query (another object
taking the slot) does not overwrite the long-term identity, while slow appearance change is followed.
Everything is detached (stop-gradient) and fixed in size: (M, Q, B, C) + (Q, B, C), independent of
video length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


DEFAULT_RATE = 0.15
DEFAULT_SIM_GATE = 0.5


@dataclass
class TrackMemory:
    fifo: Tensor  # (M, Q, B, C) most recent last
    fifo_valid: Tensor  # (M, Q, B) bool
    stable: Tensor  # (Q, B, C)
    stable_valid: Tensor  # (Q, B) bool
    rate: float = DEFAULT_RATE  # EMA rate at full confidence
    sim_gate: float = DEFAULT_SIM_GATE  # no update when cos(q, m) is below this

    @classmethod
    def empty(cls, size: int, like: Tensor, *, rate: float = DEFAULT_RATE,
              sim_gate: float = DEFAULT_SIM_GATE) -> "TrackMemory":
        """An empty memory shaped after ``like`` (Q, B, C)."""
        num_queries, batch, channels = like.shape
        return cls(
            fifo=like.new_zeros(size, num_queries, batch, channels),
            fifo_valid=torch.zeros(size, num_queries, batch, dtype=torch.bool, device=like.device),
            stable=like.new_zeros(num_queries, batch, channels),
            stable_valid=torch.zeros(num_queries, batch, dtype=torch.bool, device=like.device),
            rate=float(rate), sim_gate=float(sim_gate),
        )

    def update(self, query: Tensor, confident: Tensor, quality: Tensor | None = None) -> None:
        """Push ``query`` (Q, B, C) into the FIFO and blend it into m where ``confident`` (Q, B).

        ``quality`` (Q, B) in [0, 1] scales the rate (the class confidence; 1 when None).
        """
        query = query.detach()
        quality = torch.ones_like(confident, dtype=query.dtype) if quality is None else quality.to(query.dtype)
        similar = F.cosine_similarity(self.stable, query, dim=-1) >= self.sim_gate  # (Q, B)
        beta = torch.where(self.stable_valid, self.rate * quality.clamp(0, 1), torch.ones_like(quality))
        update = confident & (similar | ~self.stable_valid)
        blended = self.stable + beta.unsqueeze(-1) * (query - self.stable)
        self.stable = torch.where(update.unsqueeze(-1), blended, self.stable)
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
                           self.stable.detach().clone(), self.stable_valid.clone(), self.rate, self.sim_gate)
