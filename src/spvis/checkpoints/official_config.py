"""Official detectron2-style yaml (Mask2Former / DVIS / DVIS++, fully dumped) -> our config.

Only the architecture-defining keys are read; settings we cannot reproduce (deformable convs in the
backbone, grouped ResNeXt, dilated res5, other backbones) are refused with the key named.
Official ``DEC_LAYERS`` counts the initial query prediction: 10 official = 9 real layers here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spvis.config import get_cfg
from spvis.config.node import CfgNode
from spvis.errors import ConfigError

_BACKBONES = {"build_resnet_backbone": "resnet", "D2SwinTransformer": "swin"}
_DECODERS = (  # per-frame masked-attention decoders with the same keys (dvisPlus adds reid_embed)
    "MultiScaleMaskedTransformerDecoder", "VideoMultiScaleMaskedTransformerDecoder_dvis",
    "VideoMultiScaleMaskedTransformerDecoder_minvis", "VideoMultiScaleMaskedTransformerDecoder_dvisPlus",
)
_META_ARCHS = {  # official meta-architecture -> (tracker enabled, refiner enabled)
    "MaskFormer": (False, False), "MinVIS": (False, False),
    "DVIS_online": (True, False), "DVIS_offline": (True, True),
}


def _get(tree: dict, dotted: str, source: str, default: Any = KeyError) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is KeyError:
                raise ConfigError(f"{source}: official config lacks {dotted} (expected a fully dumped config)")
            return default
        node = node[part]
    return node


def read_official_yaml(path: str | Path) -> dict:
    """The yaml as a plain dict (safe loader: no python tags are executed)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: official config not found")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(tree, dict) or "MODEL" not in tree:
        raise ConfigError(f"{path}: not a detectron2 config (no MODEL section)")
    return tree


def official_to_cfg(path: str | Path, *, fmt: str = "dvis") -> CfgNode:
    """Our CfgNode for the architecture described by an official config file."""
    source = str(path)
    tree = read_official_yaml(path)
    cfg = get_cfg()
    model = cfg.MODEL

    backbone_name = _get(tree, "MODEL.BACKBONE.NAME", source)
    if backbone_name not in _BACKBONES:
        raise ConfigError(f"{source}: MODEL.BACKBONE.NAME {backbone_name!r} is not supported "
                          f"(supported: {', '.join(_BACKBONES)})")
    model.BACKBONE.NAME = _BACKBONES[backbone_name]
    model.BACKBONE.FREEZE_AT = int(_get(tree, "MODEL.BACKBONE.FREEZE_AT", source, 0))
    if model.BACKBONE.NAME == "resnet":
        res = "MODEL.RESNETS."
        for key, expected in (("NUM_GROUPS", 1), ("WIDTH_PER_GROUP", 64), ("RES5_DILATION", 1), ("STEM_TYPE", "basic")):
            value = _get(tree, res + key, source, expected)
            if value != expected:
                raise ConfigError(f"{source}: {res}{key} = {value!r} is not supported (only {expected!r})")
        deform = _get(tree, res + "DEFORM_ON_PER_STAGE", source, [False] * 4)
        if any(deform):
            raise ConfigError(f"{source}: {res}DEFORM_ON_PER_STAGE (deformable convs) is not supported")
        model.BACKBONE.DEPTH = int(_get(tree, res + "DEPTH", source))
        model.BACKBONE.RES2_OUT_CHANNELS = int(_get(tree, res + "RES2_OUT_CHANNELS", source))
        model.BACKBONE.STEM_OUT_CHANNELS = int(_get(tree, res + "STEM_OUT_CHANNELS", source))
        model.BACKBONE.NORM = str(_get(tree, res + "NORM", source))
        model.BACKBONE.STRIDE_IN_1X1 = bool(_get(tree, res + "STRIDE_IN_1X1", source))
        model.BACKBONE.OUT_FEATURES = list(_get(tree, res + "OUT_FEATURES", source))
    else:
        swin = "MODEL.SWIN."
        model.BACKBONE.SWIN.EMBED_DIM = int(_get(tree, swin + "EMBED_DIM", source))
        model.BACKBONE.SWIN.DEPTHS = [int(v) for v in _get(tree, swin + "DEPTHS", source)]
        model.BACKBONE.SWIN.NUM_HEADS = [int(v) for v in _get(tree, swin + "NUM_HEADS", source)]
        model.BACKBONE.SWIN.WINDOW_SIZE = int(_get(tree, swin + "WINDOW_SIZE", source))
        model.BACKBONE.SWIN.MLP_RATIO = float(_get(tree, swin + "MLP_RATIO", source))
        model.BACKBONE.SWIN.DROP_PATH_RATE = float(_get(tree, swin + "DROP_PATH_RATE", source))
        model.BACKBONE.SWIN.PATCH_SIZE = int(_get(tree, swin + "PATCH_SIZE", source))
        model.BACKBONE.SWIN.PRETRAIN_IMG_SIZE = int(_get(tree, swin + "PRETRAIN_IMG_SIZE", source))
        model.BACKBONE.OUT_FEATURES = list(_get(tree, swin + "OUT_FEATURES", source))
        if _get(tree, swin + "APE", source, False):
            raise ConfigError(f"{source}: MODEL.SWIN.APE (absolute position embedding) is not supported")

    model.PIXEL_MEAN = [float(v) for v in _get(tree, "MODEL.PIXEL_MEAN", source)]
    model.PIXEL_STD = [float(v) for v in _get(tree, "MODEL.PIXEL_STD", source)]

    head = "MODEL.SEM_SEG_HEAD."
    pixel_decoder_name = _get(tree, head + "PIXEL_DECODER_NAME", source)
    if pixel_decoder_name != "MSDeformAttnPixelDecoder":
        raise ConfigError(f"{source}: {head}PIXEL_DECODER_NAME {pixel_decoder_name!r} is not supported")
    model.NUM_CLASSES = int(_get(tree, head + "NUM_CLASSES", source))
    model.PIXEL_DECODER.CONV_DIM = int(_get(tree, head + "CONVS_DIM", source))
    model.PIXEL_DECODER.MASK_DIM = int(_get(tree, head + "MASK_DIM", source))
    model.PIXEL_DECODER.NORM = str(_get(tree, head + "NORM", source))
    model.PIXEL_DECODER.IN_FEATURES = list(_get(tree, head + "IN_FEATURES", source))
    model.PIXEL_DECODER.DEFORMABLE_IN_FEATURES = list(
        _get(tree, head + "DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES", source))
    model.PIXEL_DECODER.ENC_LAYERS = int(_get(tree, head + "TRANSFORMER_ENC_LAYERS", source))
    model.PIXEL_DECODER.NHEADS = int(_get(tree, head + "DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS", source))
    model.PIXEL_DECODER.NPOINTS = int(_get(tree, head + "DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS", source))
    model.PIXEL_DECODER.COMMON_STRIDE = int(_get(tree, head + "COMMON_STRIDE", source))

    mf = "MODEL.MASK_FORMER."
    dec_layers = int(_get(tree, mf + "DEC_LAYERS", source))
    if dec_layers < 1:
        raise ConfigError(f"{source}: {mf}DEC_LAYERS must be >= 1, got {dec_layers}")
    model.DECODER.DEC_LAYERS = dec_layers - 1  # official count includes the initial prediction
    model.DECODER.HIDDEN_DIM = int(_get(tree, mf + "HIDDEN_DIM", source))
    model.DECODER.NUM_QUERIES = int(_get(tree, mf + "NUM_OBJECT_QUERIES", source))
    model.DECODER.NHEADS = int(_get(tree, mf + "NHEADS", source))
    model.DECODER.DIM_FEEDFORWARD = int(_get(tree, mf + "DIM_FEEDFORWARD", source))
    model.DECODER.PRE_NORM = bool(_get(tree, mf + "PRE_NORM", source))
    model.DECODER.ENFORCE_INPUT_PROJ = bool(_get(tree, mf + "ENFORCE_INPUT_PROJ", source))
    decoder_name = _get(tree, mf + "TRANSFORMER_DECODER_NAME", source, "VideoMultiScaleMaskedTransformerDecoder_dvis")
    if decoder_name not in _DECODERS:
        raise ConfigError(f"{source}: {mf}TRANSFORMER_DECODER_NAME {decoder_name!r} is not supported "
                          f"(supported: {', '.join(_DECODERS)})")
    reid_layers = int(_get(tree, mf + "NUM_REID_HEAD_LAYERS", source, 0))
    model.DECODER.REID_BRANCH = decoder_name.endswith("dvisPlus") and reid_layers > 0
    if model.DECODER.REID_BRANCH:
        model.DECODER.NUM_REID_HEAD_LAYERS = reid_layers
        model.DECODER.REID_HIDDEN_DIM = int(_get(tree, mf + "REID_HIDDEN_DIM", source))
    model.SIZE_DIVISIBILITY = int(_get(tree, mf + "SIZE_DIVISIBILITY", source, 32))
    for ours, theirs in (("CLASS_WEIGHT", "CLASS_WEIGHT"), ("MASK_WEIGHT", "MASK_WEIGHT"),
                         ("DICE_WEIGHT", "DICE_WEIGHT"), ("NO_OBJECT_WEIGHT", "NO_OBJECT_WEIGHT"),
                         ("TRAIN_NUM_POINTS", "TRAIN_NUM_POINTS"), ("OVERSAMPLE_RATIO", "OVERSAMPLE_RATIO"),
                         ("IMPORTANCE_SAMPLE_RATIO", "IMPORTANCE_SAMPLE_RATIO"),
                         ("DEEP_SUPERVISION", "DEEP_SUPERVISION")):
        value = _get(tree, mf + theirs, source, None)
        if value is not None:
            model.LOSS[ours] = type(model.LOSS[ours])(value)

    meta = _get(tree, "MODEL.META_ARCHITECTURE", source)
    if meta not in _META_ARCHS:
        raise ConfigError(f"{source}: MODEL.META_ARCHITECTURE {meta!r} is not supported "
                          f"(supported: {', '.join(_META_ARCHS)})")
    tracker_on, refiner_on = _META_ARCHS[meta]
    if fmt == "mask2former" and (tracker_on or refiner_on):
        raise ConfigError(f"{source}: --format mask2former but MODEL.META_ARCHITECTURE is {meta} (use dvis/dvis++)")
    model.TRACKER.ENABLED = tracker_on
    model.REFINER.ENABLED = refiner_on
    if tracker_on:
        model.TRACKER.DECODER_LAYERS = int(_get(tree, "MODEL.TRACKER.DECODER_LAYERS", source))
        noise_mode = _get(tree, "MODEL.TRACKER.NOISE_MODE", source, None)
        if noise_mode is not None:
            model.TRACKER.NOISE_MODE = str(noise_mode)
        noise_ratio = _get(tree, "MODEL.TRACKER.NOISE_RATIO", source, None)
        if noise_ratio is not None:
            model.TRACKER.NOISE_RATIO = float(noise_ratio)
    if refiner_on:
        model.REFINER.DECODER_LAYERS = int(_get(tree, "MODEL.REFINER.DECODER_LAYERS", source))
    cfg.TEST.MODE = "offline" if refiner_on else "online"
    window = _get(tree, mf + "TEST.WINDOW_SIZE", source, None)
    if window is not None:
        cfg.TEST.WINDOW_SIZE = int(window)
    max_num = _get(tree, mf + "TEST.MAX_NUM", source, None)
    if max_num is not None:
        cfg.TEST.MAX_NUM = int(max_num)
    cfg.INPUT.MIN_SIZE_TEST = int(_get(tree, "INPUT.MIN_SIZE_TEST", source, cfg.INPUT.MIN_SIZE_TEST))
    cfg.INPUT.MAX_SIZE_TEST = int(_get(tree, "INPUT.MAX_SIZE_TEST", source, cfg.INPUT.MAX_SIZE_TEST))
    if fmt == "dvis++" and not model.DECODER.REID_BRANCH:
        raise ConfigError(f"{source}: --format dvis++ but {mf}TRANSFORMER_DECODER_NAME is not the dvisPlus "
                          f"decoder with NUM_REID_HEAD_LAYERS > 0")
    return cfg
