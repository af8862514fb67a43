"""Backbones for the segmenter: detectron2-layout ResNet (FrozenBN), Swin (timm blocks), MobileNetV2, any timm
model (``timm:<name>``, features_only) and a tiny CNN.

Every backbone maps images (N, 3, H, W) to {"res2": stride 4, ..., "res5": stride 32} and publishes
``output_shape()`` so the pixel decoder never hard-codes channel counts. Parameter names follow the
official detectron2/Mask2Former checkpoints (reference §8) so imported weights load by name.
Building loads no weights: pretrained ones come from a local file, in ``spvis.checkpoints.pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spvis.errors import ConfigError

LEVELS = ("res2", "res3", "res4", "res5")
# The stride-2 level of the tiny CNN (its first stem conv): with MODEL.PIXEL_DECODER.COMMON_STRIDE 2 it gives
# mask features at half resolution, for small objects whose shapes stride 4 cannot draw.
FINE_LEVEL = "res1"


@dataclass(frozen=True)
class ShapeSpec:
    """Channels and stride of one backbone output level."""

    channels: int
    stride: int


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters (all buffers, never trained)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def scale_and_shift(self) -> tuple[Tensor, Tensor]:
        """(scale, shift) with norm(x) = x * scale + shift per channel."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        scale, shift = self.scale_and_shift()
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)


def make_norm(kind: str, channels: int) -> nn.Module:
    """Norm layer by detectron2 name: FrozenBN | BN | GN (32 groups)."""
    if kind == "FrozenBN":
        return FrozenBatchNorm2d(channels)
    if kind == "BN":
        return nn.BatchNorm2d(channels)
    if kind == "GN":
        return nn.GroupNorm(32, channels)
    raise ConfigError(f"MODEL.BACKBONE.NORM: unknown norm {kind!r} (FrozenBN | BN | GN)")


class ConvNorm(nn.Conv2d):
    """Conv2d followed by an optional ``norm`` child and activation (detectron2 Conv2d key layout)."""

    def __init__(self, *args, norm: nn.Module | None = None, activation: bool = False, channels_last: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        # channels-last pays off for wide 3x3 convs on CPU (oneDNN's NHWC kernels), measured ~30% on the
        # pixel decoder's 256-ch stride-4 conv including the layout conversions
        self.channels_last = channels_last
        if norm is not None:
            self.norm = norm
        else:
            self.norm = None
        self.activation = activation
        self.fold_frozen_norm = True  # benchmarks switch this off to time the official unfused order

    def forward(self, x: Tensor) -> Tensor:
        if self.fold_frozen_norm and isinstance(self.norm, FrozenBatchNorm2d):
            # a frozen affine norm folds into the conv: one pass over the output instead of three
            # (conv(x, W) * s + b == conv(x, W * s) + b; gradients still reach W)
            scale, shift = self.norm.scale_and_shift()
            bias = shift if self.bias is None else self.bias * scale + shift
            weight = self.weight * scale.view(-1, 1, 1, 1).to(self.weight.dtype)
            x = F.conv2d(x, weight, bias.to(x.dtype), self.stride, self.padding, self.dilation, self.groups)
        elif self.channels_last and x.device.type == "cpu":
            x = F.conv2d(x.contiguous(memory_format=torch.channels_last),
                         self.weight.contiguous(memory_format=torch.channels_last), self.bias, self.stride,
                         self.padding, self.dilation, self.groups)
            if self.norm is not None:
                x = self.norm(x)
            x = x.contiguous()
        else:
            x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
            if self.norm is not None:
                x = self.norm(x)
        return F.relu(x, inplace=True) if self.activation else x


def c2_msra_fill(module: nn.Conv2d) -> None:
    """Kaiming-normal (fan_out, ReLU) weights and zero bias, detectron2's default for ResNet convs."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class BasicBlock(nn.Module):
    """Two 3x3 convs + shortcut (ResNet-18/34)."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, norm: str):
        super().__init__()
        self.shortcut = (
            ConvNorm(in_channels, out_channels, 1, stride=stride, bias=False, norm=make_norm(norm, out_channels))
            if in_channels != out_channels else None
        )
        self.conv1 = ConvNorm(in_channels, out_channels, 3, stride=stride, padding=1, bias=False,
                              norm=make_norm(norm, out_channels))
        self.conv2 = ConvNorm(out_channels, out_channels, 3, padding=1, bias=False, norm=make_norm(norm, out_channels))
        for conv in (self.conv1, self.conv2, self.shortcut):
            if conv is not None:
                c2_msra_fill(conv)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.relu(self.conv1(x), inplace=True))
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out.add_(identity), inplace=True)  # out is a fresh conv output: safe to reuse


class BottleneckBlock(nn.Module):
    """1x1 -> 3x3 -> 1x1 + shortcut (ResNet-50/101); the stride sits in the 1x1 when stride_in_1x1."""

    def __init__(self, in_channels: int, out_channels: int, *, bottleneck_channels: int, stride: int,
                 norm: str, stride_in_1x1: bool):
        super().__init__()
        self.shortcut = (
            ConvNorm(in_channels, out_channels, 1, stride=stride, bias=False, norm=make_norm(norm, out_channels))
            if in_channels != out_channels else None
        )
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvNorm(in_channels, bottleneck_channels, 1, stride=stride_1x1, bias=False,
                              norm=make_norm(norm, bottleneck_channels))
        self.conv2 = ConvNorm(bottleneck_channels, bottleneck_channels, 3, stride=stride_3x3, padding=1,
                              bias=False, norm=make_norm(norm, bottleneck_channels))
        self.conv3 = ConvNorm(bottleneck_channels, out_channels, 1, bias=False, norm=make_norm(norm, out_channels))
        for conv in (self.conv1, self.conv2, self.conv3, self.shortcut):
            if conv is not None:
                c2_msra_fill(conv)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x), inplace=True)), inplace=True))
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out.add_(identity), inplace=True)  # out is a fresh conv output: safe to reuse


class BasicStem(nn.Module):
    """7x7 stride-2 conv + norm + ReLU + 3x3 stride-2 max-pool (stride 4 in total)."""

    def __init__(self, out_channels: int, norm: str):
        super().__init__()
        self.conv1 = ConvNorm(3, out_channels, 7, stride=2, padding=3, bias=False, norm=make_norm(norm, out_channels))
        c2_msra_fill(self.conv1)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(F.relu(self.conv1(x), inplace=True), kernel_size=3, stride=2, padding=1)


_BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class StagedBackbone(nn.Module):
    """A ``stem`` then stages ``res2..res5`` run in order; subclasses build them and fill ``_shapes``."""

    out_features: tuple[str, ...]
    _shapes: dict[str, ShapeSpec]

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {name: self._shapes[name] for name in self.out_features}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = self.stem(images)  # (N, C0, H/4, W/4)
        outputs = {}
        for name in LEVELS:
            x = getattr(self, name)(x)
            if name in self.out_features:
                outputs[name] = x
        return outputs


class ResNet(StagedBackbone):
    """detectron2 ``build_resnet_backbone`` layout: ``stem`` then ``res2``..``res5`` (nn.Sequential of blocks)."""

    def __init__(self, *, depth: int = 50, stem_channels: int = 64, res2_channels: int = 256, norm: str = "FrozenBN",
                 stride_in_1x1: bool = False, freeze_at: int = 0, out_features: tuple[str, ...] = LEVELS):
        super().__init__()
        if depth not in _BLOCKS_PER_STAGE:
            raise ConfigError(f"MODEL.BACKBONE.DEPTH: {depth} is not one of {sorted(_BLOCKS_PER_STAGE)}")
        if depth in (18, 34) and res2_channels != 64:
            raise ConfigError(f"MODEL.BACKBONE.RES2_OUT_CHANNELS must be 64 for ResNet-{depth}, got {res2_channels}")
        self.stem = BasicStem(stem_channels, norm)
        self.out_features = tuple(out_features)
        self._shapes: dict[str, ShapeSpec] = {}
        in_channels, out_channels, bottleneck = stem_channels, res2_channels, 64
        for index, num_blocks in enumerate(_BLOCKS_PER_STAGE[depth]):
            name = LEVELS[index]
            blocks = []
            for block_index in range(num_blocks):
                stride = 2 if (block_index == 0 and index > 0) else 1
                if depth >= 50:
                    blocks.append(BottleneckBlock(in_channels, out_channels, bottleneck_channels=bottleneck,
                                                  stride=stride, norm=norm, stride_in_1x1=stride_in_1x1))
                else:
                    blocks.append(BasicBlock(in_channels, out_channels, stride=stride, norm=norm))
                in_channels = out_channels
            self.add_module(name, nn.Sequential(*blocks))
            self._shapes[name] = ShapeSpec(out_channels, 4 * 2 ** index)
            out_channels *= 2
            bottleneck *= 2
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int) -> None:
        """Stop gradients into the stem (freeze_at >= 1) and into res2..res{freeze_at} (detectron2 rule)."""
        stages = [self.stem] + [getattr(self, name) for name in LEVELS]
        for stage in stages[:freeze_at]:
            for parameter in stage.parameters():
                parameter.requires_grad_(False)


class TinyBackbone(StagedBackbone):
    """A four-stage CNN (GroupNorm, strides 4..32) for CPU tests and the built-in demo model."""

    def __init__(self, width: int = 32, out_features: tuple[str, ...] = LEVELS):
        super().__init__()
        self.out_features = tuple(out_features)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.GroupNorm(8, width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.GroupNorm(8, width), nn.ReLU(inplace=True),
        )
        self._shapes: dict[str, ShapeSpec] = {}
        in_channels = width
        for index, name in enumerate(LEVELS):
            out_channels = width * 2 ** index
            stride = 1 if index == 0 else 2
            self.add_module(name, nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.GroupNorm(8, out_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.GroupNorm(8, out_channels), nn.ReLU(inplace=True),
            ))
            self._shapes[name] = ShapeSpec(out_channels, 4 * 2 ** index)
            in_channels = out_channels
        self._shapes[FINE_LEVEL] = ShapeSpec(width, 2)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = self.stem[:3](images)  # (N, C0, H/2, W/2): the first stem conv
        outputs = {FINE_LEVEL: x} if FINE_LEVEL in self.out_features else {}
        x = self.stem[3:](x)  # (N, C0, H/4, W/4)
        for name in LEVELS:
            x = getattr(self, name)(x)
            if name in self.out_features:
                outputs[name] = x
        return outputs


def freeze_batch_norms(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d under ``module`` by a FrozenBatchNorm2d (same eps; stats load as buffers)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
        else:
            freeze_batch_norms(child)
    return module


class MobileNetV2Backbone(nn.Module):
    """torchvision's MobileNetV2 (width 1.0) feature layers with frozen BatchNorm, as res2..res5.

    The levels are the outputs of ``features`` blocks 3 (stride 4, 24 ch), 6 (stride 8, 32 ch), 13 (stride 16,
    96 ch) and 17 (stride 32, 320 ch); the final 1x1 conv to 1280 channels is not used. Parameter names are
    torchvision's (``features.<i>...``), so its ImageNet checkpoint (``mobilenet_v2-b0353104.pth``) loads by name.
    Frozen BN as detectron2 does for ResNets: small CPU batches cannot estimate batch statistics.
    """

    # (level, first block, end block) of torchvision's ``features``
    STAGES = (("res2", 0, 4), ("res3", 4, 7), ("res4", 7, 14), ("res5", 14, 18))
    CHANNELS = {"res2": 24, "res3": 32, "res4": 96, "res5": 320}

    def __init__(self, *, out_features: tuple[str, ...] = LEVELS, freeze_at: int = 0):
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.features = freeze_batch_norms(mobilenet_v2(weights=None).features[:18])
        self.out_features = tuple(out_features)
        self._shapes = {name: ShapeSpec(self.CHANNELS[name], 4 * 2 ** i) for i, name in enumerate(LEVELS)}
        # FREEZE_AT as detectron2: 1 freezes the stem (blocks 0-1, stride 2), k > 1 also res2 .. res<k>
        frozen_end = 0 if freeze_at <= 0 else (2 if freeze_at == 1 else self.STAGES[min(freeze_at, 5) - 2][2])
        for parameter in self.features[:frozen_end].parameters():
            parameter.requires_grad_(False)

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {name: self._shapes[name] for name in self.out_features}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        outputs = {}
        x = images
        for name, start, end in self.STAGES:
            x = self.features[start:end](x)
            if name in self.out_features:
                outputs[name] = x
        return outputs


class SwinBackbone(nn.Module):
    """Swin Transformer from timm blocks with per-level output LayerNorms ``norm0..norm3`` (D2SwinTransformer).

    Our keys are timm's (``layers.{s}.downsample`` opens stage s); official Swin checkpoints close stage s with
    ``layers.{s}.downsample`` instead: ``spvis.checkpoints.keymaps`` renames s -> s+1 on import.
    """

    def __init__(self, *, embed_dim: int = 96, depths: tuple[int, ...] = (2, 2, 6, 2),
                 num_heads: tuple[int, ...] = (3, 6, 12, 24), window_size: int = 7, mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.3, patch_size: int = 4, pretrain_img_size: int = 224,
                 out_features: tuple[str, ...] = LEVELS):
        super().__init__()
        from timm.models.swin_transformer import SwinTransformer

        swin = SwinTransformer(
            img_size=pretrain_img_size, patch_size=patch_size, embed_dim=embed_dim, depths=tuple(depths),
            num_heads=tuple(num_heads), window_size=window_size, mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate,
            num_classes=0, strict_img_size=False, dynamic_img_size=True,
        )
        self.patch_embed = swin.patch_embed
        self.layers = swin.layers
        self.out_features = tuple(out_features)
        self._shapes = {}
        for index, name in enumerate(LEVELS):
            channels = embed_dim * 2 ** index
            self.add_module(f"norm{index}", nn.LayerNorm(channels))
            self._shapes[name] = ShapeSpec(channels, patch_size * 2 ** index)

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {name: self._shapes[name] for name in self.out_features}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        height, width = images.shape[-2:]
        patch = self.patch_embed.patch_size[0]
        pad_h, pad_w = (-height) % patch, (-width) % patch
        if pad_h or pad_w:  # official Swin pads the input to a multiple of the patch size
            images = F.pad(images, (0, pad_w, 0, pad_h))
        x = self.patch_embed(images)  # (N, H/4, W/4, C) channels-last
        outputs = {}
        for index, (name, stage) in enumerate(zip(LEVELS, self.layers)):
            x = stage(x)
            if name in self.out_features:
                outputs[name] = getattr(self, f"norm{index}")(x).permute(0, 3, 1, 2).contiguous()
        return outputs


class TimmBackbone(nn.Module):
    """Any timm model through ``features_only``: its last four feature levels published as res2..res5.

    Channels and strides come from timm's ``feature_info`` (strides must be 4, 8, 16, 32, as the pixel
    decoder expects), so the pixel decoder never hard-codes them. Parameters live under ``body.`` with timm's
    own names, so a timm checkpoint (``MODEL.BACKBONE.PRETRAINED``) loads by name; nothing is downloaded.
    """

    def __init__(self, model_name: str, *, out_features: tuple[str, ...] = LEVELS, freeze_at: int = 0):
        super().__init__()
        from spvis.utils.optional import require

        timm = require("timm", extra="timm", purpose=f"the timm backbone {model_name!r}")
        try:
            probe = timm.create_model(model_name, pretrained=False, features_only=True)
        except RuntimeError as exc:  # timm: "Unknown model (...)"
            raise ConfigError(f"MODEL.BACKBONE.NAME: timm has no model {model_name!r} ({exc})") from None
        strides = probe.feature_info.reduction()
        wanted = [strides.index(s) for s in (4, 8, 16, 32) if s in strides]
        if len(wanted) != 4:
            raise ConfigError(f"MODEL.BACKBONE.NAME: timm model {model_name!r} has feature strides {strides}; "
                              f"the segmenter needs levels at strides 4, 8, 16 and 32")
        self.body = timm.create_model(model_name, pretrained=False, features_only=True, out_indices=tuple(wanted))
        self.model_name = model_name
        self.out_features = tuple(out_features)
        channels = self.body.feature_info.channels()
        self._shapes = {name: ShapeSpec(int(c), 4 * 2 ** i) for i, (name, c) in enumerate(zip(LEVELS, channels))}
        if freeze_at > 0:  # FREEZE_AT >= 1 freezes the stem: every child before the first used feature level
            first = self.body.feature_info.module_name()[0]  # e.g. layer1, stages.0, blocks.1
            children = [name for name, _ in self.body.named_children()]
            flat = first.replace(".", "_")  # FeatureListNet flattens Sequential stages (stages.0 -> stages_0)
            stop = flat if flat in children else first.split(".")[0]
            for name, child in self.body.named_children():
                if name == stop:
                    break
                child.requires_grad_(False)

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {name: self._shapes[name] for name in self.out_features}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        levels = self.body(images)  # list of 4 maps, strides 4..32
        return {name: x for name, x in zip(LEVELS, levels) if name in self.out_features}


TIMM_PREFIX = "timm:"


def build_backbone(cfg) -> nn.Module:
    """Backbone named by MODEL.BACKBONE.NAME, randomly initialised: building loads no weights
    (``spvis.checkpoints.pretrained.load_pretrained_backbone`` loads MODEL.BACKBONE.PRETRAINED)."""
    bcfg = cfg.MODEL.BACKBONE
    out_features = tuple(bcfg.OUT_FEATURES)
    unknown = [name for name in out_features if name not in LEVELS + (FINE_LEVEL,)]
    if unknown:
        raise ConfigError(f"MODEL.BACKBONE.OUT_FEATURES: unknown level(s) {unknown} (choose from {list(LEVELS)})")
    if FINE_LEVEL in out_features and bcfg.NAME != "tiny":
        raise ConfigError(f"MODEL.BACKBONE.OUT_FEATURES: level {FINE_LEVEL!r} (stride 2) exists for the tiny backbone "
                          f"only, not {bcfg.NAME!r}")
    if bcfg.NAME == "resnet":
        return ResNet(
            depth=bcfg.DEPTH, stem_channels=bcfg.STEM_OUT_CHANNELS, res2_channels=bcfg.RES2_OUT_CHANNELS,
            norm=bcfg.NORM, stride_in_1x1=bcfg.STRIDE_IN_1X1, freeze_at=bcfg.FREEZE_AT, out_features=out_features,
        )
    if bcfg.NAME == "swin":
        scfg = bcfg.SWIN
        return SwinBackbone(
            embed_dim=scfg.EMBED_DIM, depths=tuple(scfg.DEPTHS), num_heads=tuple(scfg.NUM_HEADS),
            window_size=scfg.WINDOW_SIZE, mlp_ratio=scfg.MLP_RATIO, drop_path_rate=scfg.DROP_PATH_RATE,
            patch_size=scfg.PATCH_SIZE, pretrain_img_size=scfg.PRETRAIN_IMG_SIZE, out_features=out_features,
        )
    if bcfg.NAME == "tiny":
        return TinyBackbone(width=bcfg.WIDTH, out_features=out_features)
    if bcfg.NAME == "mobilenet_v2":
        return MobileNetV2Backbone(out_features=out_features, freeze_at=bcfg.FREEZE_AT)
    if bcfg.NAME.startswith(TIMM_PREFIX) and len(bcfg.NAME) > len(TIMM_PREFIX):
        return TimmBackbone(bcfg.NAME[len(TIMM_PREFIX):], out_features=out_features, freeze_at=bcfg.FREEZE_AT)
    raise ConfigError(f"MODEL.BACKBONE.NAME: unknown backbone {bcfg.NAME!r}")
