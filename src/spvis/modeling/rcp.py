"""Refinement Compensator (RCP) and the feature-preservation losses (DESIGN.md "Joint Feature-Preserving Modeling").

RCP is a light residual branch ``q~ = q + alpha * MLP([q; s; m])`` that restores what propagation
loses: ``q`` is the propagated query, ``s`` a summary of the track's recent states and ``m`` its stable
(long-term) embedding. ``alpha`` is learned and starts near 0, so the branch starts near identity.
* ``CausalRefinementCompensator`` (online): ``s`` = attention of q over a bounded FIFO of the track's
  previous outputs, ``m`` = a confidence-gated moving average; the state never grows with T.
* ``VideoRefinementCompensator`` (offline, under the refiner): ``s`` = the tracker's embedding of the
  same frame, ``m`` = a learned softmax-over-T pooling of the tracker's embeddings of the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spvis.modeling.layers import MLP


class _Compensator(nn.Module):
    """``q + alpha * MLP([q; s; m])`` on the last dimension."""

    def __init__(self, hidden_dim: int, alpha_init: float):
        super().__init__()
        self.compensate = MLP(3 * hidden_dim, hidden_dim, hidden_dim, 2)
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    def forward(self, q: Tensor, s: Tensor, m: Tensor) -> Tensor:
        return q + self.alpha * self.compensate(torch.cat([q, s, m], dim=-1))


class VideoRefinementCompensator(nn.Module):
    """Full-video RCP: compensates the refiner output with the tracker's per-frame and video-level states."""

    def __init__(self, hidden_dim: int, alpha_init: float = 0.05, *, preserve_weight: float = 1.0,
                 contrast_weight: float = 1.0):
        super().__init__()
        self.preserve_weight = preserve_weight  # loss weights used by the refiner training stage
        self.contrast_weight = contrast_weight
        self.memory_score = nn.Linear(hidden_dim, 1)
        self.compensator = _Compensator(hidden_dim, alpha_init)

    def stable_embedding(self, states: Tensor) -> Tensor:
        """Learned temporal pooling: (B, T, Q, C) -> (B, Q, C)."""
        weights = self.memory_score(states).softmax(dim=1)  # (B, T, Q, 1)
        return (states * weights).sum(dim=1)

    def forward(self, refined: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        """``refined`` and ``states``: (B, T, Q, C). Returns (compensated (B, T, Q, C), stable m (B, Q, C))."""
        stable = self.stable_embedding(states)
        expanded = stable.unsqueeze(1).expand_as(refined)
        return self.compensator(refined, states, expanded), stable


@dataclass
class CausalRCPState:
    """Bounded per-video state of the online RCP: the last ``N`` outputs and the stable embedding."""

    fifo: Tensor  # (B, N, Q, C) most recent last; only the last ``filled`` rows are valid
    filled: int
    stable: Tensor  # (B, Q, C)


class CausalRefinementCompensator(nn.Module):
    """Online RCP: causal attention over the track's FIFO of recent outputs + a gated stable embedding."""

    def __init__(self, hidden_dim: int, *, memory_size: int = 10, alpha_init: float = 0.05,
                 momentum: float = 0.5, score_threshold: float = 0.5):
        super().__init__()
        self.memory_size = memory_size
        self.momentum = momentum
        self.score_threshold = score_threshold
        self.query_proj = nn.Linear(hidden_dim, hidden_dim)
        self.key_proj = nn.Linear(hidden_dim, hidden_dim)
        self.compensator = _Compensator(hidden_dim, alpha_init)

    def initial_state(self, queries: Tensor) -> CausalRCPState:
        """Empty FIFO, stable embedding = the first queries (B, Q, C)."""
        b, q, c = queries.shape
        fifo = queries.new_zeros(b, self.memory_size, q, c)
        return CausalRCPState(fifo=fifo, filled=0, stable=queries.detach())

    def summarize(self, queries: Tensor, state: CausalRCPState) -> Tensor:
        """Attention of each query over its own valid FIFO entries: (B, Q, C) -> (B, Q, C)."""
        if state.filled == 0:
            return queries
        history = state.fifo[:, -state.filled:]  # (B, n, Q, C)
        keys = self.key_proj(history)
        scores = torch.einsum("bqc,bnqc->bqn", self.query_proj(queries), keys) / keys.shape[-1] ** 0.5
        return torch.einsum("bqn,bnqc->bqc", scores.softmax(dim=-1), history)

    def step(
        self,
        queries: Tensor,  # (B, Q, C) this frame's propagated track queries
        state: CausalRCPState | None,
        scores: Tensor | None = None,  # (B, Q) confidence of each track this frame (e.g. max class prob)
    ) -> tuple[Tensor, CausalRCPState]:
        """Compensate this frame's queries and update the bounded state. Returns ((B, Q, C), new state)."""
        if state is None:
            state = self.initial_state(queries)
        summary = self.summarize(queries, state)
        compensated = self.compensator(queries, summary, state.stable)
        new_state = self._update(compensated.detach(), state, scores)
        return compensated, new_state

    def _update(self, outputs: Tensor, state: CausalRCPState, scores: Tensor | None) -> CausalRCPState:
        """Push into the FIFO; move the stable embedding towards confident outputs similar to recent ones."""
        if state.filled > 0:
            recent = state.fifo[:, -state.filled:].mean(dim=1)  # (B, Q, C)
            similarity = F.cosine_similarity(outputs, recent, dim=-1).clamp_min(0)  # (B, Q)
        else:
            similarity = torch.ones(outputs.shape[:2], device=outputs.device, dtype=outputs.dtype)
        rate = self.momentum * similarity
        if scores is not None:
            rate = rate * (scores > self.score_threshold).to(rate.dtype)
        stable = state.stable + rate.unsqueeze(-1) * (outputs - state.stable)
        fifo = torch.cat([state.fifo[:, 1:], outputs.unsqueeze(1)], dim=1)
        return CausalRCPState(fifo=fifo, filled=min(state.filled + 1, self.memory_size), stable=stable)


def preservation_loss(compensated: Tensor, stable: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``1 - cos(q~_t, stopgrad(m))`` over valid (confidently matched) entries.

    ``compensated`` (B, T, Q, C), ``stable`` (B, Q, C), ``valid`` bool (B, T, Q). Zero when nothing is valid.
    """
    cosine = F.cosine_similarity(compensated, stable.detach().unsqueeze(1).expand_as(compensated), dim=-1)
    if not bool(valid.any()):
        return compensated.sum() * 0.0
    return (1.0 - cosine)[valid].mean()


def contrastive_loss(embeds: Tensor, valid: Tensor, temperature: float = 0.1) -> Tensor:
    """Multi-positive track contrastive loss (DVIS++/IDOL style) on cosine similarities.

    ``embeds`` (B, T, Q, C), ``valid`` bool (B, T, Q) (slot matched to a present object in that frame).
    Anchor (t, i): positives = slot i in the other valid frames; negatives = other valid slots in any
    frame; loss = log(1 + sum_pos sum_neg exp(s_neg - s_pos)), averaged over anchors with both.
    """
    losses = []
    for b in range(embeds.shape[0]):
        t, q, _ = embeds[b].shape
        flat = F.normalize(embeds[b].reshape(t * q, -1), dim=-1)  # (T*Q, C)
        ok = valid[b].reshape(t * q)
        slot = torch.arange(q, device=embeds.device).repeat(t)  # (T*Q,)
        frame = torch.arange(t, device=embeds.device).repeat_interleave(q)
        sim = flat @ flat.T / temperature  # (T*Q, T*Q)
        pair_ok = ok[:, None] & ok[None, :]
        positive = pair_ok & (slot[:, None] == slot[None, :]) & (frame[:, None] != frame[None, :])
        negative = pair_ok & (slot[:, None] != slot[None, :])
        anchors = positive.any(dim=1) & negative.any(dim=1)
        if not bool(anchors.any()):
            continue
        neg_term = torch.logsumexp(sim.masked_fill(~negative, float("-inf")), dim=1)
        pos_term = torch.logsumexp((-sim).masked_fill(~positive, float("-inf")), dim=1)
        losses.append(F.softplus(neg_term + pos_term)[anchors])
    if not losses:
        return embeds.sum() * 0.0
    return torch.cat(losses).mean()
