"""MSDeformAttnPixelDecoder of Mask2Former: deformable encoder over 1/8-1/32 + one FPN step to 1/4.

Outputs the three encoder maps for the transformer decoder (lowest resolution first) and the stride-4
``mask_features``. Module and parameter names are the official ones (reference §8:
``input_proj``, ``transformer.level_embed``, ``transformer.encoder.layers.*``, ``adapter_1``,
``layer_1``, ``mask_features``). It always runs in float32, as the official code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spvis.errors import ConfigError
from spvis.modeling.backbone import ConvNorm, ShapeSpec
from spvis.modeling.ms_deform_attn import MSDeformAttn
from spvis.modeling.position_encoding import PositionEmbeddingSine


def c2_xavier_fill(module: nn.Conv2d) -> None:
    """detectron2's 'c2_xavier_fill': kaiming-uniform with a=1, zero bias."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class DeformableEncoderLayer(nn.Module):
    """Deformable self-attention + FFN, post-norm (``self_attn``, ``norm1``, ``linear1/2``, ``norm2``)."""

    def __init__(self, d_model: int, d_ffn: int, n_levels: int, n_heads: int, n_points: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: Tensor, pos: Tensor, reference_points: Tensor, spatial_shapes) -> Tensor:
        # src, pos (N, S, C); reference_points (N, S, L, 2)
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes)
        src = self.norm1(src + self.dropout1(attended))
        ffn = self.linear2(self.dropout2(F.relu(self.linear1(src), inplace=True)))
        return self.norm2(src + self.dropout3(ffn))


class DeformableEncoder(nn.Module):
    """Stack of deformable encoder layers (``encoder.layers.{i}``)."""

    def __init__(self, num_layers: int, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(DeformableEncoderLayer(**layer_kwargs) for _ in range(num_layers))

    @staticmethod
    def reference_points(spatial_shapes, device: torch.device) -> Tensor:
        """Pixel-centre reference points of every level, normalised to [0, 1] -> (S, 2) as (x, y)."""
        points = []
        for height, width in spatial_shapes:
            ref_y, ref_x = torch.meshgrid(
                torch.linspace(0.5, height - 0.5, height, dtype=torch.float32, device=device),
                torch.linspace(0.5, width - 0.5, width, dtype=torch.float32, device=device),
                indexing="ij",
            )
            points.append(torch.stack((ref_x.reshape(-1) / width, ref_y.reshape(-1) / height), -1))
        return torch.cat(points, 0)

    def forward(self, src: Tensor, pos: Tensor, spatial_shapes) -> Tensor:
        n = src.shape[0]
        # no padding masks (valid ratios 1): each query samples every level around the same relative spot
        reference = self.reference_points(spatial_shapes, src.device)  # (S, 2)
        reference = reference[None, :, None, :].expand(n, -1, len(spatial_shapes), -1)  # (N, S, L, 2)
        for layer in self.layers:
            src = layer(src, pos, reference, spatial_shapes)
        return src


class DeformableTransformer(nn.Module):
    """Holds ``level_embed`` and ``encoder`` under the official name ``transformer``."""

    def __init__(self, d_model: int, n_heads: int, num_layers: int, d_ffn: int, n_levels: int, n_points: int):
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(n_levels, d_model))
        self.encoder = DeformableEncoder(num_layers, d_model=d_model, d_ffn=d_ffn, n_levels=n_levels,
                                         n_heads=n_heads, n_points=n_points)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module._reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, sources: list[Tensor], positions: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        spatial_shapes = [tuple(src.shape[-2:]) for src in sources]
        src_flat = torch.cat([src.flatten(2).transpose(1, 2) for src in sources], 1)  # (N, S, C)
        pos_flat = torch.cat([
            pos.flatten(2).transpose(1, 2) + self.level_embed[level].view(1, 1, -1)
            for level, pos in enumerate(positions)
        ], 1)
        return self.encoder(src_flat, pos_flat, spatial_shapes), spatial_shapes


class MSDeformAttnPixelDecoder(nn.Module):
    """Pixel decoder: ``forward(features) -> (mask_features (N, Cm, H/s, W/s), [3 maps, stride 32 first])``,
    s = common_stride (4 as Mask2Former; 2 adds a light fine level from a stride-2 backbone level)."""

    def __init__(self, input_shape: dict[str, ShapeSpec], *, conv_dim: int = 256, mask_dim: int = 256,
                 norm: str = "GN", transformer_in_features: tuple[str, ...] = ("res3", "res4", "res5"),
                 enc_layers: int = 6, enc_ffn: int = 1024, n_heads: int = 8, n_points: int = 4,
                 common_stride: int = 4, num_feature_levels_out: int = 3):
        super().__init__()
        if norm != "GN":
            raise ValueError(f"MODEL.PIXEL_DECODER.NORM: only 'GN' is supported, got {norm!r}")
        ordered = sorted(input_shape.items(), key=lambda item: item[1].stride)
        self.in_features = [name for name, _ in ordered]
        # deformable levels, highest stride first (res5, res4, res3) as the official input_proj order
        deformable = sorted(((k, v) for k, v in input_shape.items() if k in transformer_in_features),
                            key=lambda item: -item[1].stride)
        self.transformer_in_features = [name for name, _ in deformable]
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(shape.channels, conv_dim, kernel_size=1), nn.GroupNorm(32, conv_dim))
            for _, shape in deformable
        )
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.transformer = DeformableTransformer(conv_dim, n_heads, enc_layers, enc_ffn, len(deformable), n_points)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        self.mask_dim = mask_dim
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, kernel_size=1)
        c2_xavier_fill(self.mask_features)
        self.num_feature_levels_out = num_feature_levels_out
        min_deform_stride = min(shape.stride for _, shape in deformable)
        # FPN levels between the finest deformable level and stride 4 (one: res2)
        self.fpn_features = [name for name, shape in ordered
                             if max(common_stride, 4) <= shape.stride < min_deform_stride]
        # common_stride 2: a light fine level. The stride-4 mask features are upsampled and a 1x1 projection of the
        # stride-2 backbone level is added (zero-initialised, so it starts as plain upsampling). A full FPN level at
        # stride 2 (GN + 3x3 conv) doubled the CPU training step of the tiny recipe; this one adds what the stride-2
        # pixels hold (edges of small shapes) at a fraction of that.
        self.fine_feature = None
        if common_stride == 2:
            fine = [name for name, shape in ordered if shape.stride == 2]
            if not fine:
                raise ConfigError("MODEL.PIXEL_DECODER.COMMON_STRIDE 2 needs a stride-2 backbone level in IN_FEATURES "
                                 "(the tiny backbone's res1)")
            self.fine_feature = fine[0]
            self.fine_lateral = nn.Conv2d(input_shape[self.fine_feature].channels, mask_dim, kernel_size=1)
            nn.init.zeros_(self.fine_lateral.weight)
            nn.init.zeros_(self.fine_lateral.bias)
        elif common_stride != 4:
            raise ConfigError(f"MODEL.PIXEL_DECODER.COMMON_STRIDE must be 4 or 2, got {common_stride}")
        for index, name in enumerate(self.fpn_features[::-1], start=1):
            lateral = ConvNorm(input_shape[name].channels, conv_dim, 1, bias=False, norm=nn.GroupNorm(32, conv_dim))
            output = ConvNorm(conv_dim, conv_dim, 3, padding=1, bias=False, norm=nn.GroupNorm(32, conv_dim),
                              activation=True, channels_last=True)
            c2_xavier_fill(lateral)
            c2_xavier_fill(output)
            self.add_module(f"adapter_{index}", lateral)
            self.add_module(f"layer_{index}", output)

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        with torch.autocast(device_type=features[self.in_features[0]].device.type, enabled=False):
            sources, positions = [], []
            for index, name in enumerate(self.transformer_in_features):
                x = features[name].float()
                sources.append(self.input_proj[index](x))  # (N, C, H_l, W_l)
                positions.append(self.pe_layer(x))
            memory, shapes = self.transformer(sources, positions)  # (N, S, C)
            n = memory.shape[0]
            outputs = []
            for chunk, (height, width) in zip(memory.split([h * w for h, w in shapes], dim=1), shapes):
                outputs.append(chunk.transpose(1, 2).reshape(n, -1, height, width))
            for index, name in enumerate(self.fpn_features[::-1], start=1):
                lateral = getattr(self, f"adapter_{index}")(features[name].float())
                merged = lateral + F.interpolate(outputs[-1], size=lateral.shape[-2:], mode="bilinear",
                                                 align_corners=False)
                outputs.append(getattr(self, f"layer_{index}")(merged))
            mask_features = self.mask_features(outputs[-1])  # (N, Cm, H/4, W/4)
            if self.fine_feature is not None:
                fine = features[self.fine_feature].float()  # (N, C1, H/2, W/2)
                mask_features = F.interpolate(mask_features, size=fine.shape[-2:], mode="bilinear",
                                              align_corners=False) + self.fine_lateral(fine)  # (N, Cm, H/2, W/2)
            return mask_features, outputs[: self.num_feature_levels_out]
