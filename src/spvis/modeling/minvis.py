"""MinVIS association (reference §1): the segmenter's own per-frame predictions, linked frame to frame.

No learned tracker: the current frame's query embeddings are matched to the previous frame's (already
aligned) embeddings by Hungarian matching on 1 - cosine similarity, and the segmenter's logits, masks and
embeddings are permuted into slot order. Slot s is then instance s for the whole video, exactly as in the
DVIS baseline, so the same post-processing (mean logits over T, official top-k) applies. This is the
baseline every tracker must beat, and it works with segmenter-only weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spvis.modeling.pgt.matching import alignment_costs, solve_alignments


@dataclass
class MinVISState:
    """What one frame hands to the next: its embeddings in slot order. Fixed size."""

    frame_index: int
    last_embeds: Tensor  # (B, Q, C)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """x (B, Q, ...) permuted per clip by index (B, Q)."""
    expanded = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return torch.gather(x, 1, expanded)


@torch.no_grad()
def minvis_step(seg: dict, state: MinVISState | None = None) -> tuple[dict, MinVISState]:
    """One frame of MinVIS association on segmenter outputs (``pred_logits`` (B, Q, K+1), ``pred_masks``
    (B, Q, h, w), ``pred_embds`` (B, Q, C)) -> (tracker-style outputs in slot order, new state).

    The outputs carry the keys online inference reads from ``tracker.step``: pred_logits, pred_masks,
    pred_embds, match_indices (B, Q) and track_ids (B, Q) = arange(Q) (slot = identity).
    """
    embeds = seg["pred_embds"]
    batch, num_queries = embeds.shape[:2]
    if state is None:
        index = torch.arange(num_queries, device=embeds.device).expand(batch, -1)
    else:  # Hungarian on every clip's costs, brought to the host in one transfer
        costs = alignment_costs(state.last_embeds.transpose(0, 1), embeds.transpose(0, 1))  # (B, Q, Q)
        index = solve_alignments(costs, "hungarian")
    aligned = _gather(embeds, index)
    out = {
        "pred_logits": _gather(seg["pred_logits"], index),
        "pred_masks": _gather(seg["pred_masks"], index),
        "pred_embds": aligned,
        "match_indices": index,
        "track_ids": torch.arange(num_queries, device=embeds.device).expand(batch, -1),
    }
    return out, MinVISState(0 if state is None else state.frame_index + 1, aligned)
