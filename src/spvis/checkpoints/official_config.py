"""Official detectron2-style yaml (Mask2Former / DVIS / DVIS++, fully dumped) -> our config.

Only the architecture-defining keys are read; settings we cannot reproduce (deformable convs in the
backbone, grouped ResNeXt, dilated res5, other backbones) are refused with the key named.
Official ``DEC_LAYERS`` counts the initial query prediction: 10 official = 9 real layers here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from spvis.config import get_cfg
from spvis.config.node import CfgNode, read_yaml
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


def _typed(value: Any, kind: type, dotted: str, source: str) -> Any:
    """``value`` of an official key checked to be ``kind`` (a float may be given as an int); ConfigError naming
    the key otherwise (``int("abc")`` would be a traceback, ``bool("False")`` silently True)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        names = {int: "an integer", float: "a number", bool: "true/false", str: "a string"}
        text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ConfigError(f"{source}: {dotted} must be {names.get(kind, kind.__name__)}, got {text}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{source}: {dotted} must be a finite number, got {value!r}")
    return value


def _get_typed(tree: dict, dotted: str, source: str, kind: type, default: Any = KeyError) -> Any:
    return _typed(_get(tree, dotted, source, default), kind, dotted, source)


def _get_list(tree: dict, dotted: str, source: str, kind: type) -> list:
    value = _get(tree, dotted, source)
    if not isinstance(value, (list, tuple)) or not value:  # an empty list of features builds no model
        raise ConfigError(f"{source}: {dotted} must be a non-empty list, got {value!r}")
    values = [_typed(v, kind, f"{dotted}[{k}]", source) for k, v in enumerate(value)]
    if kind is str and len(set(values)) != len(values):  # a feature listed twice was silently merged (fuzz suite)
        twice = next(v for v in values if values.count(v) > 1)
        raise ConfigError(f"{source}: {dotted} lists {twice!r} twice")
    return values


def read_official_yaml(path: str | Path) -> dict:
    """The yaml as a plain dict (safe loader: no python tags are executed)."""
    path = Path(path)
    tree = read_yaml(path, what="official config")
    if not isinstance(tree, dict) or "MODEL" not in tree:
        raise ConfigError(f"{path}: not a detectron2 config (no MODEL section)")
    return tree


def official_to_cfg(path: str | Path, *, fmt: str = "dvis") -> CfgNode:
    """Our CfgNode for the architecture described by an official config file."""
    source = str(path)
    tree = read_official_yaml(path)
    cfg = get_cfg()
    model = cfg.MODEL

    backbone_name = _get_typed(tree, "MODEL.BACKBONE.NAME", source, str)
    if backbone_name not in _BACKBONES:
        raise ConfigError(f"{source}: MODEL.BACKBONE.NAME {backbone_name!r} is not supported "
                          f"(supported: {', '.join(_BACKBONES)})")
    model.BACKBONE.NAME = _BACKBONES[backbone_name]
    model.BACKBONE.FREEZE_AT = _get_typed(tree, "MODEL.BACKBONE.FREEZE_AT", source, int, 0)
    if model.BACKBONE.NAME == "resnet":
        res = "MODEL.RESNETS."
        for key, expected in (("NUM_GROUPS", 1), ("WIDTH_PER_GROUP", 64), ("RES5_DILATION", 1), ("STEM_TYPE", "basic")):
            value = _get(tree, res + key, source, expected)
            if value != expected:
                raise ConfigError(f"{source}: {res}{key} = {value!r} is not supported (only {expected!r})")
        deform = _get(tree, res + "DEFORM_ON_PER_STAGE", source, [False] * 4)
        if not isinstance(deform, list):
            raise ConfigError(f"{source}: {res}DEFORM_ON_PER_STAGE must be a list of true/false, got {deform!r}")
        if any(deform):
            raise ConfigError(f"{source}: {res}DEFORM_ON_PER_STAGE (deformable convs) is not supported")
        model.BACKBONE.DEPTH = _get_typed(tree, res + "DEPTH", source, int)
        model.BACKBONE.RES2_OUT_CHANNELS = _get_typed(tree, res + "RES2_OUT_CHANNELS", source, int)
        model.BACKBONE.STEM_OUT_CHANNELS = _get_typed(tree, res + "STEM_OUT_CHANNELS", source, int)
        model.BACKBONE.NORM = _get_typed(tree, res + "NORM", source, str)
        model.BACKBONE.STRIDE_IN_1X1 = _get_typed(tree, res + "STRIDE_IN_1X1", source, bool)
        model.BACKBONE.OUT_FEATURES = _get_list(tree, res + "OUT_FEATURES", source, str)
    else:
        swin = "MODEL.SWIN."
        model.BACKBONE.SWIN.EMBED_DIM = _get_typed(tree, swin + "EMBED_DIM", source, int)
        model.BACKBONE.SWIN.DEPTHS = _get_list(tree, swin + "DEPTHS", source, int)
        model.BACKBONE.SWIN.NUM_HEADS = _get_list(tree, swin + "NUM_HEADS", source, int)
        if len(model.BACKBONE.SWIN.NUM_HEADS) != len(model.BACKBONE.SWIN.DEPTHS):  # the extra ones went unused
            raise ConfigError(f"{source}: {swin}NUM_HEADS has {len(model.BACKBONE.SWIN.NUM_HEADS)} entries but "
                              f"{swin}DEPTHS has {len(model.BACKBONE.SWIN.DEPTHS)} stages (one each)")
        model.BACKBONE.SWIN.WINDOW_SIZE = _get_typed(tree, swin + "WINDOW_SIZE", source, int)
        model.BACKBONE.SWIN.MLP_RATIO = _get_typed(tree, swin + "MLP_RATIO", source, float)
        model.BACKBONE.SWIN.DROP_PATH_RATE = _get_typed(tree, swin + "DROP_PATH_RATE", source, float)
        model.BACKBONE.SWIN.PATCH_SIZE = _get_typed(tree, swin + "PATCH_SIZE", source, int)
        model.BACKBONE.SWIN.PRETRAIN_IMG_SIZE = _get_typed(tree, swin + "PRETRAIN_IMG_SIZE", source, int)
        model.BACKBONE.OUT_FEATURES = _get_list(tree, swin + "OUT_FEATURES", source, str)
        if _get(tree, swin + "APE", source, False):
            raise ConfigError(f"{source}: MODEL.SWIN.APE (absolute position embedding) is not supported")

    model.PIXEL_MEAN = _get_list(tree, "MODEL.PIXEL_MEAN", source, float)
    model.PIXEL_STD = _get_list(tree, "MODEL.PIXEL_STD", source, float)

    head = "MODEL.SEM_SEG_HEAD."
    pixel_decoder_name = _get_typed(tree, head + "PIXEL_DECODER_NAME", source, str)
    if pixel_decoder_name != "MSDeformAttnPixelDecoder":
        raise ConfigError(f"{source}: {head}PIXEL_DECODER_NAME {pixel_decoder_name!r} is not supported")
    model.NUM_CLASSES = _get_typed(tree, head + "NUM_CLASSES", source, int)
    model.PIXEL_DECODER.CONV_DIM = _get_typed(tree, head + "CONVS_DIM", source, int)
    model.PIXEL_DECODER.MASK_DIM = _get_typed(tree, head + "MASK_DIM", source, int)
    model.PIXEL_DECODER.NORM = _get_typed(tree, head + "NORM", source, str)
    model.PIXEL_DECODER.IN_FEATURES = _get_list(tree, head + "IN_FEATURES", source, str)
    model.PIXEL_DECODER.DEFORMABLE_IN_FEATURES = _get_list(
        tree, head + "DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES", source, str)
    model.PIXEL_DECODER.ENC_LAYERS = _get_typed(tree, head + "TRANSFORMER_ENC_LAYERS", source, int)
    model.PIXEL_DECODER.NHEADS = _get_typed(tree, head + "DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS", source, int)
    model.PIXEL_DECODER.NPOINTS = _get_typed(tree, head + "DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS", source, int)
    model.PIXEL_DECODER.COMMON_STRIDE = _get_typed(tree, head + "COMMON_STRIDE", source, int)

    mf = "MODEL.MASK_FORMER."
    dec_layers = _get_typed(tree, mf + "DEC_LAYERS", source, int)
    if dec_layers < 1:
        raise ConfigError(f"{source}: {mf}DEC_LAYERS must be >= 1, got {dec_layers}")
    model.DECODER.DEC_LAYERS = dec_layers - 1  # official count includes the initial prediction
    model.DECODER.HIDDEN_DIM = _get_typed(tree, mf + "HIDDEN_DIM", source, int)
    model.DECODER.NUM_QUERIES = _get_typed(tree, mf + "NUM_OBJECT_QUERIES", source, int)
    model.DECODER.NHEADS = _get_typed(tree, mf + "NHEADS", source, int)
    model.DECODER.DIM_FEEDFORWARD = _get_typed(tree, mf + "DIM_FEEDFORWARD", source, int)
    model.DECODER.PRE_NORM = _get_typed(tree, mf + "PRE_NORM", source, bool)
    model.DECODER.ENFORCE_INPUT_PROJ = _get_typed(tree, mf + "ENFORCE_INPUT_PROJ", source, bool)
    decoder_name = _get(tree, mf + "TRANSFORMER_DECODER_NAME", source, "VideoMultiScaleMaskedTransformerDecoder_dvis")
    if decoder_name not in _DECODERS:
        raise ConfigError(f"{source}: {mf}TRANSFORMER_DECODER_NAME {decoder_name!r} is not supported "
                          f"(supported: {', '.join(_DECODERS)})")
    reid_layers = _get_typed(tree, mf + "NUM_REID_HEAD_LAYERS", source, int, 0)
    model.DECODER.REID_BRANCH = decoder_name.endswith("dvisPlus") and reid_layers > 0
    if model.DECODER.REID_BRANCH:
        model.DECODER.NUM_REID_HEAD_LAYERS = reid_layers
        model.DECODER.REID_HIDDEN_DIM = _get_typed(tree, mf + "REID_HIDDEN_DIM", source, int)
    model.SIZE_DIVISIBILITY = _get_typed(tree, mf + "SIZE_DIVISIBILITY", source, int, 32)
    for ours, theirs in (("CLASS_WEIGHT", "CLASS_WEIGHT"), ("MASK_WEIGHT", "MASK_WEIGHT"),
                         ("DICE_WEIGHT", "DICE_WEIGHT"), ("NO_OBJECT_WEIGHT", "NO_OBJECT_WEIGHT"),
                         ("TRAIN_NUM_POINTS", "TRAIN_NUM_POINTS"), ("OVERSAMPLE_RATIO", "OVERSAMPLE_RATIO"),
                         ("IMPORTANCE_SAMPLE_RATIO", "IMPORTANCE_SAMPLE_RATIO"),
                         ("DEEP_SUPERVISION", "DEEP_SUPERVISION")):
        value = _get(tree, mf + theirs, source, None)
        if value is not None:
            model.LOSS[ours] = _typed(value, type(model.LOSS[ours]), mf + theirs, source)

    meta = _get_typed(tree, "MODEL.META_ARCHITECTURE", source, str)
    if meta not in _META_ARCHS:
        raise ConfigError(f"{source}: MODEL.META_ARCHITECTURE {meta!r} is not supported "
                          f"(supported: {', '.join(_META_ARCHS)})")
    tracker_on, refiner_on = _META_ARCHS[meta]
    if fmt == "mask2former" and (tracker_on or refiner_on):
        raise ConfigError(f"{source}: --format mask2former but MODEL.META_ARCHITECTURE is {meta} (use dvis/dvis++)")
    model.TRACKER.ENABLED = tracker_on
    model.REFINER.ENABLED = refiner_on
    if tracker_on:
        model.TRACKER.DECODER_LAYERS = _get_typed(tree, "MODEL.TRACKER.DECODER_LAYERS", source, int)
        noise_mode = _get(tree, "MODEL.TRACKER.NOISE_MODE", source, None)
        if noise_mode is not None:
            model.TRACKER.NOISE_MODE = _typed(noise_mode, str, "MODEL.TRACKER.NOISE_MODE", source)
        noise_ratio = _get(tree, "MODEL.TRACKER.NOISE_RATIO", source, None)
        if noise_ratio is not None:
            model.TRACKER.NOISE_RATIO = _typed(noise_ratio, float, "MODEL.TRACKER.NOISE_RATIO", source)
    if refiner_on:
        model.REFINER.DECODER_LAYERS = _get_typed(tree, "MODEL.REFINER.DECODER_LAYERS", source, int)
    cfg.TEST.MODE = "offline" if refiner_on else "online"
    window = _get(tree, mf + "TEST.WINDOW_SIZE", source, None)
    if window is not None:
        cfg.TEST.WINDOW_SIZE = _typed(window, int, mf + "TEST.WINDOW_SIZE", source)
    max_num = _get(tree, mf + "TEST.MAX_NUM", source, None)
    if max_num is not None:
        cfg.TEST.MAX_NUM = _typed(max_num, int, mf + "TEST.MAX_NUM", source)
    for ours, theirs in (("OBJECT_THRESHOLD", "OBJECT_MASK_THRESHOLD"), ("OVERLAP_THRESHOLD", "OVERLAP_THRESHOLD")):
        value = _get(tree, mf + "TEST." + theirs, source, None)  # the VPS rules (spvis infer --task vps)
        if value is not None:
            cfg.TEST.PANOPTIC[ours] = _typed(value, float, mf + "TEST." + theirs, source)
    cfg.INPUT.MIN_SIZE_TEST = _get_typed(tree, "INPUT.MIN_SIZE_TEST", source, int, cfg.INPUT.MIN_SIZE_TEST)
    cfg.INPUT.MAX_SIZE_TEST = _get_typed(tree, "INPUT.MAX_SIZE_TEST", source, int, cfg.INPUT.MAX_SIZE_TEST)
    if fmt == "dvis++" and not model.DECODER.REID_BRANCH:
        raise ConfigError(f"{source}: --format dvis++ but {mf}TRANSFORMER_DECODER_NAME is not the dvisPlus "
                          f"decoder with NUM_REID_HEAD_LAYERS > 0")
    try:
        get_cfg().merge_dict(cfg.to_dict(), source=source)  # the schema's ranges (positive sizes, list lengths, ...)
    except ConfigError as exc:
        raise ConfigError(_with_official_name(str(exc))) from None
    return cfg


# our key <- the official key it is read from, so that a range error names the key the user's file holds
_OFFICIAL_NAMES = {
    "MODEL.BACKBONE.DEPTH": "MODEL.RESNETS.DEPTH", "MODEL.BACKBONE.RES2_OUT_CHANNELS": "MODEL.RESNETS.RES2_OUT_CHANNELS",
    "MODEL.BACKBONE.STEM_OUT_CHANNELS": "MODEL.RESNETS.STEM_OUT_CHANNELS", "MODEL.BACKBONE.NORM": "MODEL.RESNETS.NORM",
    "MODEL.BACKBONE.SWIN.EMBED_DIM": "MODEL.SWIN.EMBED_DIM", "MODEL.BACKBONE.SWIN.DEPTHS": "MODEL.SWIN.DEPTHS",
    "MODEL.BACKBONE.SWIN.NUM_HEADS": "MODEL.SWIN.NUM_HEADS", "MODEL.BACKBONE.SWIN.WINDOW_SIZE": "MODEL.SWIN.WINDOW_SIZE",
    "MODEL.BACKBONE.SWIN.MLP_RATIO": "MODEL.SWIN.MLP_RATIO", "MODEL.BACKBONE.SWIN.PATCH_SIZE": "MODEL.SWIN.PATCH_SIZE",
    "MODEL.BACKBONE.SWIN.DROP_PATH_RATE": "MODEL.SWIN.DROP_PATH_RATE",
    "MODEL.BACKBONE.SWIN.PRETRAIN_IMG_SIZE": "MODEL.SWIN.PRETRAIN_IMG_SIZE",
    "MODEL.NUM_CLASSES": "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "MODEL.PIXEL_DECODER.CONV_DIM": "MODEL.SEM_SEG_HEAD.CONVS_DIM",
    "MODEL.PIXEL_DECODER.MASK_DIM": "MODEL.SEM_SEG_HEAD.MASK_DIM", "MODEL.PIXEL_DECODER.NORM": "MODEL.SEM_SEG_HEAD.NORM",
    "MODEL.PIXEL_DECODER.IN_FEATURES": "MODEL.SEM_SEG_HEAD.IN_FEATURES",
    "MODEL.PIXEL_DECODER.DEFORMABLE_IN_FEATURES": "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES",
    "MODEL.PIXEL_DECODER.ENC_LAYERS": "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS",
    "MODEL.PIXEL_DECODER.NHEADS": "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS",
    "MODEL.PIXEL_DECODER.NPOINTS": "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS",
    "MODEL.PIXEL_DECODER.COMMON_STRIDE": "MODEL.SEM_SEG_HEAD.COMMON_STRIDE",
    "MODEL.DECODER.DEC_LAYERS": "MODEL.MASK_FORMER.DEC_LAYERS (minus one)",
    "MODEL.DECODER.HIDDEN_DIM": "MODEL.MASK_FORMER.HIDDEN_DIM",
    "MODEL.DECODER.NUM_QUERIES": "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "MODEL.DECODER.NHEADS": "MODEL.MASK_FORMER.NHEADS",
    "MODEL.DECODER.DIM_FEEDFORWARD": "MODEL.MASK_FORMER.DIM_FEEDFORWARD",
    "MODEL.DECODER.NUM_REID_HEAD_LAYERS": "MODEL.MASK_FORMER.NUM_REID_HEAD_LAYERS",
    "MODEL.DECODER.REID_HIDDEN_DIM": "MODEL.MASK_FORMER.REID_HIDDEN_DIM",
    "MODEL.SIZE_DIVISIBILITY": "MODEL.MASK_FORMER.SIZE_DIVISIBILITY",
    "TEST.WINDOW_SIZE": "MODEL.MASK_FORMER.TEST.WINDOW_SIZE", "TEST.MAX_NUM": "MODEL.MASK_FORMER.TEST.MAX_NUM",
}


def _with_official_name(message: str) -> str:
    """``message`` of a schema error about one of our keys, with the official key it came from named after it."""
    match = re.search(r"config key ([A-Z0-9_.]+)(\[\d+\])?", message)
    if match is None:
        return message
    ours, index = match.group(1), match.group(2) or ""
    theirs = _OFFICIAL_NAMES.get(ours) or (f"MODEL.MASK_FORMER.{ours.split('.')[-1]}" if ours.startswith("MODEL.LOSS.")
                                          else ours)
    return message.replace(match.group(0), f"{match.group(0)} (official {theirs}{index})", 1)
