"""Clip-boundary association with filtering (PGT part 3): who is who after a clip of propagation.

Cost per (track, slot) = (1 - cos(m_track, q_slot)) + IOU_WEIGHT * (1 - maskIoU(previous track mask,
current slot mask)) + CLASS_WEIGHT * [labels differ], solved with Hungarian matching. Pairs whose cosine
similarity is below the threshold are rejected: propagation drifted, so the track is not continued there.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

IOU_WEIGHT = 1.0
CLASS_WEIGHT = 0.5
REJECTED_COST = 1e6  # pairs under the similarity threshold


def mask_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of flattened boolean masks. a (..., N, P), b (..., M, P) -> (..., N, M) (leading batch dims
    broadcast); empty unions give 0."""
    a, b = a.float(), b.float()
    inter = a @ b.transpose(-1, -2)
    union = a.sum(-1).unsqueeze(-1) + b.sum(-1).unsqueeze(-2) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def associate(
    track_embeds: Tensor,  # (N, C) stable embeddings of live tracks
    track_masks: Tensor,  # (N, P) bool, masks of the tracks on the previous (overlap) frame
    track_labels: Tensor,  # (N,) int64
    slot_embeds: Tensor,  # (M, C) current tracker outputs of the candidate slots
    slot_masks: Tensor,  # (M, P) bool
    slot_labels: Tensor,  # (M,) int64
    sim_thr: float,
) -> list[tuple[int, int | None]]:
    """For each track row, the candidate column it continues in, or None when rejected or unmatched."""
    if track_embeds.shape[0] == 0:
        return []
    cos = F.cosine_similarity(track_embeds.unsqueeze(1), slot_embeds.unsqueeze(0), dim=-1)  # (N, M)
    iou = mask_iou(track_masks, slot_masks)
    disagree = (track_labels.unsqueeze(1) != slot_labels.unsqueeze(0)).float()
    cost = (1 - cos) + IOU_WEIGHT * (1 - iou) + CLASS_WEIGHT * disagree
    # gate before solving, so a track that fits nowhere cannot take a slot another track fits
    cost = torch.where(cos >= sim_thr, cost, torch.full_like(cost, REJECTED_COST))
    # the cost and the similarities in one host transfer
    host = torch.stack([torch.nan_to_num(cost.float(), nan=REJECTED_COST), cos.float()]).cpu().numpy()
    cost_np, cos_np = host[0], host[1]
    rows, cols = linear_sum_assignment(cost_np)
    chosen: dict[int, int | None] = {int(r): None for r in range(track_embeds.shape[0])}
    for r, c in zip(rows, cols):
        if np.isfinite(cos_np[r, c]) and cos_np[r, c] >= sim_thr:
            chosen[int(r)] = int(c)
    return sorted(chosen.items())
