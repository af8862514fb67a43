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

from spvis.modeling.pgt.matching import SlotMasks, confident_masks, remember_slot_masks, slot_costs, solve_alignments


@dataclass
class MinVISState:
    """What one frame hands to the next: its embeddings in slot order. Fixed size."""

    frame_index: int
    last_embeds: Tensor  # (B, Q, C)
    slot_masks: SlotMasks | None = None  # each slot's last confident mask and label (mask_weight > 0 only)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """x (B, Q, ...) permuted per clip by index (B, Q)."""
    expanded = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return torch.gather(x, 1, expanded)


@torch.no_grad()
def minvis_step(seg: dict, state: MinVISState | None = None, mask_weight: float = 0.0,
                motion: bool = False) -> tuple[dict, MinVISState]:
    """One frame of MinVIS association on segmenter outputs (``pred_logits`` (B, Q, K+1), ``pred_masks``
    (B, Q, h, w), ``pred_embds`` (B, Q, C)) -> (tracker-style outputs in slot order, new state).
    ``mask_weight`` > 0 adds the mask-overlap term of ``alignment_costs`` (TEST.MINVIS_MASK_WEIGHT; 0 = MinVIS as
    published), with ``motion`` on the remembered masks moved by their velocity (MODEL.TRACKER.ALIGN_MOTION).

    The outputs carry the keys online inference reads from ``tracker.step``: pred_logits, pred_masks,
    pred_embds, match_indices (B, Q) and track_ids (B, Q) = arange(Q) (slot = identity).
    """
    embeds = seg["pred_embds"]
    batch, num_queries = embeds.shape[:2]
    frame = confident_masks(seg["pred_masks"], seg["pred_logits"]) if mask_weight > 0 else None
    if state is None:
        index = torch.arange(num_queries, device=embeds.device).expand(batch, -1)
    else:  # Hungarian on every clip's costs, brought to the host in one transfer
        costs = slot_costs(state.last_embeds.transpose(0, 1), embeds.transpose(0, 1), state.slot_masks, frame,
                           mask_weight, motion)  # (B, Q, Q)
        index = solve_alignments(costs, "hungarian")
    aligned = _gather(embeds, index)
    out = {
        "pred_logits": _gather(seg["pred_logits"], index),
        "pred_masks": _gather(seg["pred_masks"], index),
        "pred_embds": aligned,
        "match_indices": index,
        "track_ids": torch.arange(num_queries, device=embeds.device).expand(batch, -1),
    }
    slot_masks = None if frame is None else remember_slot_masks(None if state is None else state.slot_masks, frame,
                                                                index)
    return out, MinVISState(0 if state is None else state.frame_index + 1, aligned, slot_masks)
