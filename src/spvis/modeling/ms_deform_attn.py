"""Multi-scale deformable attention (Deformable DETR) in pure PyTorch, built for CPU speed.

The official CPU fallback samples each level with its own ``grid_sample`` call, materialises every
sample (N*M, D, Lq, L*P) and then reduces it with the attention weights. Here all levels, points and
the four bilinear corners of every sample become one weighted gather-and-sum that
``F.embedding_bag(mode="sum", per_sample_weights=...)`` performs in a single fused, multi-threaded
kernel: the sampled values are never materialised and there is no per-level Python loop. Zero
padding outside each level is reproduced exactly by giving out-of-range corners weight 0, so the
result equals ``grid_sample(..., padding_mode="zeros", align_corners=False)`` up to float rounding.
Gradients flow to the values, the sampling locations (through the bilinear weights) and the
attention weights, so the op also trains; but its backward is slower than grid_sample's, so
``MSDeformAttn`` uses ``ms_deform_attn_reference`` (the official per-level algorithm) when gradients
are needed and the fused core for inference.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SpatialShapes = Sequence[tuple[int, int]]


def _level_sizes(spatial_shapes: SpatialShapes, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(L, 2) level sizes as (W, H), the order of sampling coordinates."""
    return torch.tensor([[w, h] for h, w in spatial_shapes], dtype=dtype, device=device)


def ms_deform_attn_core(
    value: Tensor,  # (N, S, M, D) values of all levels, flattened level after level
    spatial_shapes: SpatialShapes,  # L x (H_l, W_l), sum(H_l * W_l) == S
    sampling_locations: Tensor,  # (N, Lq, M, L, P, 2) normalised (x, y) in [0, 1] for in-map samples
    attention_weights: Tensor,  # (N, Lq, M, L, P) softmax-normalised over (L, P)
) -> Tensor:
    """Deformable attention core -> (N, Lq, M*D), channel order head-major as the official op."""
    sizes = _level_sizes(spatial_shapes, value.device, sampling_locations.dtype).view(1, 1, 1, -1, 1, 2)
    # pixel coordinates with align_corners=False: pixel centres at integer positions
    return sample_pixels(value, spatial_shapes, sampling_locations * sizes - 0.5, attention_weights)


def sample_pixels(
    value: Tensor,  # (N, S, M, D)
    spatial_shapes: SpatialShapes,  # L x (H_l, W_l)
    pixels: Tensor,  # (N, Lq, M, L, P, 2) (x, y) in pixels of each level, pixel centres at integers
    attention_weights: Tensor,  # (N, Lq, M, L, P)
) -> Tensor:
    """The fused bilinear gather + weighted sum -> (N, Lq, M*D); zero outside each level."""
    n, s, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = pixels.shape
    device, dtype = value.device, value.dtype
    # index arithmetic in int32 halves the memory traffic; rows < N*S*M always fit
    index_dtype = torch.int32 if n * s * m < 2**31 - 1 else torch.int64
    # Per-level constants are materialised over (L, P[, 2]) so that every elementwise op below sees the
    # same contiguous trailing block in both operands (a tiny (L, 1, 2) broadcast stops PyTorch from
    # vectorising the inner loops and costs several times more).
    sizes = _level_sizes(spatial_shapes, device, pixels.dtype).view(num_levels, 1, 2)
    max_index = (sizes - 1).expand(num_levels, num_points, 2).contiguous()  # (L, P, 2) as (W-1, H-1)
    widths_lp = torch.tensor([w for _, w in spatial_shapes], device=device, dtype=index_dtype)
    heights_lp = torch.tensor([h for h, _ in spatial_shapes], device=device, dtype=index_dtype)
    starts = torch.cumsum(heights_lp * widths_lp, 0, dtype=index_dtype) - heights_lp * widths_lp  # (L,)
    level_w = widths_lp.view(num_levels, 1).expand(num_levels, num_points).contiguous()  # (L, P)
    level_start = starts.view(num_levels, 1).expand(num_levels, num_points).contiguous()

    # x and y are handled together as the last axis of size 2 (one op per step instead of two)
    low = torch.floor(pixels)  # (N, Lq, M, L, P, 2) integer part
    frac = pixels - low  # weight of the right / lower neighbour
    # zero padding: a corner outside its level gets weight 0 (same as grid_sample padding_mode="zeros")
    low_inside = ((low >= 0) & (low <= max_index)).to(dtype)
    high_inside = ((low >= -1) & (low < max_index)).to(dtype)
    w_low = (1 - frac).mul_(low_inside)
    w_high = frac.mul_(high_inside)
    wx = torch.stack((w_low[..., 0], w_high[..., 0]), dim=-1)  # (N, Lq, M, L, P, 2)
    wy = torch.stack((w_low[..., 1], w_high[..., 1]), dim=-1).mul_(attention_weights.unsqueeze(-1))
    weights = (wy.unsqueeze(-1) * wx.unsqueeze(-2)).flatten(-2)  # (N, Lq, M, L, P, 4) TL, TR, BL, BR

    # clamping to [-1, size - 1] keeps indices near their level; clamped samples have weight 0 anyway
    low = torch.minimum(low.clamp_(min=-1), max_index).to(index_dtype)
    # row of the (N*S*M, D) value table: ((n * S) + position) * M + head; corners add 0, 1, W, W+1 pixels
    position = (low[..., 1] * level_w).add_(low[..., 0]).add_(level_start)  # (N, Lq, M, L, P)
    batch_offset = (torch.arange(n, device=device, dtype=index_dtype) * s).view(n, 1, 1, 1, 1)
    head_offset = torch.arange(m, device=device, dtype=index_dtype).view(1, 1, m, 1, 1)
    base_rows = position.add_(batch_offset).mul_(m).add_(head_offset)  # (N, Lq, M, L, P)
    corner_offsets = torch.stack((torch.zeros_like(widths_lp), torch.ones_like(widths_lp), widths_lp,
                                  widths_lp + 1), -1) * m  # (L, 4)
    corner_offsets = corner_offsets.view(num_levels, 1, 4).expand(num_levels, num_points, 4).contiguous()
    rows = base_rows.unsqueeze(-1) + corner_offsets  # (N, Lq, M, L, P, 4)
    rows = rows.clamp_(0, n * s * m - 1)  # corners with weight 0 may point just outside the table

    bag = num_levels * num_points * 4
    out = F.embedding_bag(
        rows.view(n * lq * m, bag), value.reshape(n * s * m, d),
        per_sample_weights=weights.reshape(n * lq * m, bag), mode="sum",
    )  # (N*Lq*M, D)
    return out.view(n, lq, m * d)


def ms_deform_attn_reference(
    value: Tensor, spatial_shapes: SpatialShapes, sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """The official per-level ``grid_sample`` algorithm (ms_deform_attn_core_pytorch) -> (N, Lq, M*D)."""
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = sampling_locations.shape
    value_list = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    weights = attention_weights.transpose(1, 2).reshape(n * m, 1, lq, num_levels, num_points)
    # Each level's samples are weighted and summed as soon as they are drawn: the official code stacks all
    # levels into one (N*M, D, Lq, L*P) tensor first, whose broadcast multiply and its backward were 20 % of
    # a CPU training step (benchmarks/train_step_profile.py); per level it is the same sum, half the time.
    out = None
    for level, (h, w) in enumerate(spatial_shapes):
        value_l = value_list[level].flatten(2).transpose(1, 2).reshape(n * m, d, h, w)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # (N*M, Lq, P, 2)
        sampled = F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False)
        term = (sampled * weights[..., level, :]).sum(-1)  # (N*M, D, Lq)
        out = term if out is None else out + term
    return out.view(n, m * d, lq).transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention with the official parameter names and initialisation."""

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.use_reference_core = False  # benchmarks flip this to time the official algorithm
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Offsets start on a ring of 8 directions, scaled by point index (Deformable DETR init)."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.n_heads, 1, 1, 2)
        grid = grid.repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(
        self,
        query: Tensor,  # (N, Lq, C) with positional encoding added
        reference_points: Tensor,  # (N, Lq, L, 2) normalised (x, y)
        input_flatten: Tensor,  # (N, S, C)
        spatial_shapes: SpatialShapes,  # L x (H, W)
        padding_mask: Tensor | None = None,  # (N, S) True = padding
    ) -> Tensor:
        n, lq, _ = query.shape
        s = input_flatten.shape[1]
        value = self.value_proj(input_flatten)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.0)
        value = value.view(n, s, self.n_heads, self.d_model // self.n_heads)
        offsets = self.sampling_offsets(query).view(n, lq, self.n_heads, self.n_levels, self.n_points, 2)
        weights = self.attention_weights(query).view(n, lq, self.n_heads, self.n_levels * self.n_points)
        weights = weights.softmax(-1).view(n, lq, self.n_heads, self.n_levels, self.n_points)
        sizes = _level_sizes(spatial_shapes, query.device, query.dtype)  # (L, 2) as (W, H)
        # The fused core wins forward (~4x on CPU), but embedding_bag's backward sorts all 4*L*P*Lq*M indices
        # and is slower than grid_sample's; when gradients are needed the per-level path is used instead.
        needs_grad = torch.is_grad_enabled() and (value.requires_grad or offsets.requires_grad
                                                  or weights.requires_grad)
        if self.use_reference_core or needs_grad:
            # offsets are in pixels of each level: normalise by (W, H), as the official module does
            locations = reference_points[:, :, None, :, None, :] + offsets / sizes[None, None, None, :, None, :]
            return self.output_proj(ms_deform_attn_reference(value, spatial_shapes, locations, weights))
        # straight to pixel coordinates: (ref + off / W) * W - 0.5 == ref * W - 0.5 + off (one pass over offsets)
        reference_pixels = reference_points * sizes - 0.5  # (N, Lq, L, 2), small
        pixels = reference_pixels[:, :, None, :, None, :] + offsets
        return self.output_proj(sample_pixels(value, spatial_shapes, pixels, weights))
