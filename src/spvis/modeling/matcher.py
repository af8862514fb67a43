"""Hungarian matching of predicted queries to ground-truth instances (Mask2Former-VIS costs).

cost = w_class * (-p(class)) + w_mask * BCE + w_dice * dice, the mask terms on random points shared by
all masks of a clip (the same points in every frame), solved with scipy's linear_sum_assignment.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from spvis.modeling.point_sampling import point_sample


def batch_sigmoid_ce_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """inputs (Q, P) logits, targets (N, P) in {0, 1} -> (Q, N) mean BCE over points."""
    points = inputs.shape[1]
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / points


def batch_dice_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """inputs (Q, P) logits, targets (N, P) -> (Q, N) dice loss with +1 smoothing."""
    probs = inputs.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher(nn.Module):
    """``forward(outputs, targets) -> [(pred_idx (M,), tgt_idx (M,)) int64] * B``."""

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matching costs are 0")
        self.cost_class, self.cost_mask, self.cost_dice = cost_class, cost_mask, cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def forward(self, outputs: dict, targets: list[dict]) -> list[tuple[Tensor, Tensor]]:
        """outputs: pred_logits (B, Q, K+1), pred_masks (B, Q, T, h, w); targets: labels (N,), masks (N, T, H, W)."""
        indices = []
        for b, target in enumerate(targets):
            labels = target["labels"]
            if labels.numel() == 0:
                empty = torch.empty(0, dtype=torch.int64)
                indices.append((empty, empty))
                continue
            probs = outputs["pred_logits"][b].float().softmax(-1)  # (Q, K+1)
            cost_class = -probs[:, labels]  # (Q, N)
            pred_masks = outputs["pred_masks"][b].float()  # (Q, T, h, w)
            tgt_masks = target["masks"].to(pred_masks)  # (N, T, H, W)
            coords = torch.rand(1, self.num_points, 2, device=pred_masks.device)
            tgt_points = point_sample(tgt_masks, coords.expand(tgt_masks.shape[0], -1, -1)).flatten(1)  # (N, T*P)
            pred_points = point_sample(pred_masks, coords.expand(pred_masks.shape[0], -1, -1)).flatten(1)
            cost = (self.cost_mask * batch_sigmoid_ce_cost(pred_points, tgt_points)
                    + self.cost_class * cost_class
                    + self.cost_dice * batch_dice_cost(pred_points, tgt_points))
            cost = torch.nan_to_num(cost, nan=0.0).cpu()
            rows, cols = linear_sum_assignment(cost.numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
