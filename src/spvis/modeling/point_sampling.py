"""Point sampling for the mask losses (PointRend): bilinear point reads and uncertainty-driven point choice.

Losses and matching costs are computed on a few thousand sampled points instead of full masks, which is
what keeps Mask2Former training memory flat in the image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def point_sample(inputs: Tensor, coords: Tensor) -> Tensor:
    """inputs (R, C, H, W), coords (R, P, 2) normalised (x, y) in [0, 1] -> (R, C, P), bilinear, zero outside."""
    grid = (2.0 * coords - 1.0).unsqueeze(2)  # (R, P, 1, 2)
    return F.grid_sample(inputs, grid.to(inputs.dtype), mode="bilinear", align_corners=False).squeeze(3)


def uncertainty(logits: Tensor) -> Tensor:
    """Points whose mask logit is closest to 0 are the most uncertain: -|logit|."""
    return -logits.abs()


def uncertain_point_coords(logits: Tensor, num_points: int, oversample_ratio: float,
                           importance_sample_ratio: float) -> Tensor:
    """logits (R, 1, H, W) -> coords (R, num_points, 2): a share of the most uncertain of an oversampled set
    (importance_sample_ratio of the points) plus uniform random points for the rest."""
    rows = logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(rows, num_sampled, 2, device=logits.device)
    scores = uncertainty(point_sample(logits, coords))  # (R, 1, S)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    top = torch.topk(scores[:, 0, :], k=num_uncertain, dim=1)[1]  # (R, k)
    chosen = torch.gather(coords, 1, top.unsqueeze(-1).expand(-1, -1, 2))
    if num_random > 0:
        chosen = torch.cat([chosen, torch.rand(rows, num_random, 2, device=logits.device)], dim=1)
    return chosen
