"""2-D sine positional encoding of Mask2Former (DETR style, normalised to [0, 2*pi]).

Used by the pixel decoder's deformable encoder and by the masked-attention transformer decoder; it has
no parameters, so it adds no checkpoint keys.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """Sine/cosine encoding of (y, x) positions; output channels = 2 * num_pos_feats, y first."""

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, normalize: bool = True,
                 scale: float = 2 * math.pi):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) (only its shape, device are used) -> (N, 2*num_pos_feats, H, W)."""
        n, _, height, width = x.shape
        device = x.device
        # cumulative counts 1..H / 1..W as the official mask-based formulation (no padding mask here)
        y_embed = torch.arange(1, height + 1, dtype=torch.float32, device=device)[:, None].expand(height, width)
        x_embed = torch.arange(1, width + 1, dtype=torch.float32, device=device)[None, :].expand(height, width)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (y_embed[-1:, :] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats)
        pos_x = x_embed[:, :, None] / dim_t  # (H, W, F)
        pos_y = y_embed[:, :, None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=3).flatten(2)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=3).flatten(2)
        pos = torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)  # (2F, H, W)
        return pos.unsqueeze(0).expand(n, -1, -1, -1)
