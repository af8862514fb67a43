"""Spatial Interaction Module (SIM): keeps track queries grounded in the pixels of the current frame.

Our design (the SPVIS paper publishes no equations; see DESIGN.md "Joint Feature-Preserving Modeling"):
1. masked cross-attention from each query to the frame's mask features, restricted to its dilated
   guide mask (the previous / tracker mask; all positions when the mask is empty or absent);
2. a mask-pooled appearance embedding (sigmoid-weighted mean of the features) added through an MLP;
3. self-attention among the queries, so they stay distinct under occlusion.
The result enters through a learned gate that starts at 0, so switching SIM on starts from the
module's input exactly (a DVIS checkpoint behaves unchanged until the gate is trained).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spvis.modeling.layers import MLP, CrossAttentionLayer, SelfAttentionLayer, reset_transformer_parameters


def dilate_masks(mask_logits: Tensor, radius: int) -> Tensor:
    """Binary masks (logit > 0) dilated by a square of side 2*radius+1: (B, Q, h, w) -> bool (B, Q, h, w)."""
    binary = (mask_logits > 0).float()
    if radius > 0:
        binary = F.max_pool2d(binary, kernel_size=2 * radius + 1, stride=1, padding=radius)
    return binary > 0


def attention_block_mask(region: Tensor, nheads: int) -> Tensor:
    """Attention mask for nn.MultiheadAttention from allowed regions (B, Q, h, w) bool.

    Returns bool (B*nheads, Q, h*w), True = blocked; a query whose region is empty sees every position.
    """
    b, q = region.shape[:2]
    blocked = ~region.flatten(2)  # (B, Q, hw)
    blocked[blocked.all(dim=-1)] = False
    return blocked.repeat_interleave(nheads, dim=0)


class SpatialInteractionModule(nn.Module):
    """Mask-guided spatial interaction of Q queries with one frame's mask features."""

    def __init__(
        self,
        *,
        hidden_dim: int,
        mask_dim: int,
        nheads: int = 8,
        dilation: int = 2,
        feature_stride: int = 2,
    ):
        super().__init__()
        self.nheads = nheads
        self.dilation = dilation
        self.feature_stride = feature_stride
        self.feature_proj = nn.Linear(mask_dim, hidden_dim)
        self.cross_attention = CrossAttentionLayer(hidden_dim, nheads)
        self.appearance_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 2)
        self.self_attention = SelfAttentionLayer(hidden_dim, nheads)
        reset_transformer_parameters(self)
        # The gate starts at 0: the module is an exact identity until it is trained.
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(
        self,
        queries: Tensor,  # (B, Q, C)
        mask_features: Tensor,  # (B, Cm, h, w)
        guide_masks: Tensor | None = None,  # (B, Q, h, w) mask logits (or bool masks) guiding each query
    ) -> dict:
        """Returns ``embeds`` (B, Q, C) (gated residual update) and ``appearance`` (B, Q, C) (mask-pooled).

        Bool guides (the online tracker keeps only its previous binary masks) pool with hard 0/1 weights.
        """
        feats = mask_features
        guide = guide_masks
        hard_guide = guide is not None and guide.dtype == torch.bool
        if hard_guide:  # as logits: +1 inside, -1 outside (the same "> 0" region)
            guide = guide.to(feats.dtype) * 2 - 1
        if self.feature_stride > 1:  # attention over h*w/stride^2 positions keeps the cost small
            feats = F.avg_pool2d(feats, self.feature_stride, ceil_mode=True)
            if guide is not None:
                guide = F.max_pool2d(guide, self.feature_stride, ceil_mode=True)
        b, _, h, w = feats.shape
        pixels = self.feature_proj(feats.flatten(2).transpose(1, 2))  # (B, hw, C)
        if guide is None:
            region = torch.ones(b, queries.shape[1], h, w, dtype=torch.bool, device=queries.device)
            weights = torch.ones(b, queries.shape[1], h * w, device=queries.device, dtype=pixels.dtype)
        else:
            region = dilate_masks(guide, self.dilation)
            weights = ((guide > 0).to(pixels.dtype) if hard_guide else guide.sigmoid()).flatten(2)  # (B, Q, hw)
            if hard_guide:  # an empty hard mask pools over every position, as its attention does
                weights[weights.sum(dim=-1) == 0] = 1.0
        appearance = torch.bmm(weights, pixels) / weights.sum(dim=-1, keepdim=True).clamp_min(1e-6)  # (B, Q, C)
        block = attention_block_mask(region, self.nheads)
        x = queries.transpose(0, 1)  # (Q, B, C)
        x = self.cross_attention(x, pixels.transpose(0, 1), memory_mask=block)
        x = x + self.appearance_proj(appearance).transpose(0, 1)
        x = self.self_attention(x).transpose(0, 1)  # (B, Q, C)
        return {"embeds": queries + self.gate * (x - queries), "appearance": appearance}


def build_sim(section, *, hidden_dim: int, mask_dim: int, nheads: int) -> SpatialInteractionModule | None:
    """SIM from a ``MODEL.TRACKER`` or ``MODEL.REFINER`` config section; None when its ``SIM`` switch is off."""
    if not section.SIM:
        return None
    return SpatialInteractionModule(
        hidden_dim=hidden_dim, mask_dim=mask_dim, nheads=nheads,
        dilation=section.SIM_DILATION, feature_stride=section.SIM_FEATURE_STRIDE,
    )
