"""Hungarian matching of predicted queries to ground-truth instances (Mask2Former-VIS costs).

cost = w_class * (-p(class)) + w_mask * BCE + w_dice * dice, the mask terms on random points shared by
all masks of a prediction set (the same points in every frame), solved with scipy's linear_sum_assignment.
``match_costs`` is the one place the cost is computed: the set matcher here and the tracker stage's
first-appearance assignment both call it, for all prediction sets of a batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from spvis.modeling.point_sampling import point_sample


def batch_sigmoid_ce_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """inputs (..., Q, P) logits, targets (..., N, P) in {0, 1} -> (..., Q, N) mean BCE over points."""
    points = inputs.shape[-1]
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    return (pos @ targets.transpose(-1, -2) + neg @ (1 - targets).transpose(-1, -2)) / points


def batch_dice_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """inputs (..., Q, P) logits, targets (..., N, P) -> (..., Q, N) dice loss with +1 smoothing."""
    probs = inputs.sigmoid()
    numerator = 2 * probs @ targets.transpose(-1, -2)
    denominator = probs.sum(-1)[..., :, None] + targets.sum(-1)[..., None, :]
    return 1 - (numerator + 1) / (denominator + 1)


@dataclass(frozen=True)
class MatchCost:
    """Weights of the three cost terms and the number of random points the mask terms are read at."""

    class_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    num_points: int = 12544


@torch.no_grad()
def match_costs(logits: Tensor, pred_masks: Tensor, labels: list[Tensor], tgt_masks: list[Tensor],
                cost: MatchCost) -> list[np.ndarray]:
    """Cost matrices (Q, N_r) of R prediction sets against their targets, in one batched pass.

    logits (R, Q, K+1); pred_masks (R, Q, T, h, w); labels[r] (N_r,); tgt_masks[r] (N_r, T, H, W), every
    set at the same (T, H, W). One point set is drawn per set with targets, in order (``torch.rand(1, P, 2)``
    each: the random stream of a per-set loop), and the whole batch comes to the host in one copy.
    """
    num_sets, num_queries = logits.shape[:2]
    sizes = [int(lab.numel()) for lab in labels]
    costs = [np.zeros((num_queries, 0), dtype=np.float32) for _ in sizes]
    rows = [r for r, n in enumerate(sizes) if n > 0]
    if not rows:
        return costs
    device = pred_masks.device
    coords = torch.cat([torch.rand(1, cost.num_points, 2, device=device) for _ in rows])  # (R', P, 2)
    row_index = torch.as_tensor(rows, device=device)
    counts = torch.as_tensor([sizes[r] for r in rows], device=device)  # (R',)
    n_max = max(sizes)

    probs = logits.index_select(0, row_index.to(logits.device)).float().softmax(-1)  # (R', Q, K+1)
    # targets padded to N_max: set r's column j is target j of set r (padding: label 0, empty mask; sliced off)
    set_of = torch.repeat_interleave(torch.arange(len(rows), device=device), counts)  # (sum N,)
    column_of = torch.cat([torch.arange(sizes[r], device=device) for r in rows])  # (sum N,)
    padded_labels = torch.zeros(len(rows), n_max, dtype=torch.int64, device=device)
    padded_labels[set_of, column_of] = torch.cat([labels[r].to(device) for r in rows]).long()
    cost_class = -probs.gather(2, padded_labels[:, None, :].expand(-1, num_queries, -1).to(probs.device))  # (R', Q, N)

    pred = pred_masks.index_select(0, row_index).float()  # (R', Q, T, h, w)
    frames = pred.shape[2]
    pred_points = point_sample(pred.flatten(1, 2), coords).reshape(len(rows), num_queries, -1)  # (R', Q, T*P)
    tgt = torch.cat([tgt_masks[r].to(device=device, dtype=torch.float32) for r in rows])  # (sum N, T, H, W)
    tgt_flat = point_sample(tgt, coords.index_select(0, set_of)).flatten(1)  # (sum N, T*P)
    tgt_points = tgt_flat.new_zeros(len(rows), n_max, frames * cost.num_points)
    tgt_points[set_of, column_of] = tgt_flat  # (R', N, T*P)

    total = (cost.mask_weight * batch_sigmoid_ce_cost(pred_points, tgt_points)
             + cost.class_weight * cost_class
             + cost.dice_weight * batch_dice_cost(pred_points, tgt_points))  # (R', Q, N)
    host = torch.nan_to_num(total, nan=0.0).cpu().numpy()  # the one device-to-host copy
    for k, r in enumerate(rows):
        costs[r] = host[k, :, :sizes[r]]
    return costs


class HungarianMatcher(nn.Module):
    """``forward(outputs, targets) -> [(pred_idx (M,), tgt_idx (M,)) int64] * B``."""

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matching costs are 0")
        self.cost = MatchCost(cost_class, cost_mask, cost_dice, num_points)

    @property
    def num_points(self) -> int:
        return self.cost.num_points

    @torch.no_grad()
    def forward(self, outputs: dict, targets: list[dict]) -> list[tuple[Tensor, Tensor]]:
        """outputs: pred_logits (B, Q, K+1), pred_masks (B, Q, T, h, w); targets: labels (N,), masks (N, T, H, W)."""
        costs = match_costs(outputs["pred_logits"], outputs["pred_masks"], [t["labels"] for t in targets],
                            [t["masks"] for t in targets], self.cost)
        indices = []
        for cost in costs:
            rows, cols = linear_sum_assignment(cost)
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
