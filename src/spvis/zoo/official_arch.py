"""Official detectron2-style configs of the zoo's architectures, as the importer reads them.

``spvis checkpoint import`` needs the official (fully dumped) yaml of a checkpoint; the official repositories
ship ``_BASE_`` chains over detectron2's and Mask2Former's defaults instead. ``official_tree`` writes the
architecture-defining keys of the published recipes (facts read from the configs of zhang-tao-whu/DVIS
6695214 and facebookresearch/Mask2Former 9b0651c, plus the library defaults those chains rely on) so the
importer's translation and its strict key/shape check run unchanged.
"""

from __future__ import annotations

from typing import Any

# Swin-L (IN21k, 384) as every Swin-L recipe of DVIS and Mask2Former sets it
_SWIN_L = {"EMBED_DIM": 192, "DEPTHS": [2, 2, 18, 2], "NUM_HEADS": [6, 12, 24, 48], "WINDOW_SIZE": 12,
           "MLP_RATIO": 4.0, "DROP_PATH_RATE": 0.3, "PATCH_SIZE": 4, "PRETRAIN_IMG_SIZE": 384, "APE": False,
           "OUT_FEATURES": ["res2", "res3", "res4", "res5"]}
# ResNet-50 with detectron2's defaults (FrozenBN, 256-channel res2) and Mask2Former's STRIDE_IN_1X1 False
_R50 = {"DEPTH": 50, "RES2_OUT_CHANNELS": 256, "STEM_OUT_CHANNELS": 64, "NORM": "FrozenBN", "STRIDE_IN_1X1": False,
        "NUM_GROUPS": 1, "WIDTH_PER_GROUP": 64, "RES5_DILATION": 1, "STEM_TYPE": "basic",
        "OUT_FEATURES": ["res2", "res3", "res4", "res5"], "DEFORM_ON_PER_STAGE": [False] * 4}
# per-frame decoders by official meta-architecture (MaskFormer: Mask2Former on images)
_DECODER_OF = {"MaskFormer": "MultiScaleMaskedTransformerDecoder",
               "MinVIS": "VideoMultiScaleMaskedTransformerDecoder_minvis",
               "DVIS_online": "VideoMultiScaleMaskedTransformerDecoder_dvis",
               "DVIS_offline": "VideoMultiScaleMaskedTransformerDecoder_dvis"}


def official_tree(*, backbone: str, meta: str, num_classes: int, queries: int, min_size_test: int,
                  max_size_test: int = 1333) -> dict[str, Any]:
    """The official config (nested dict) of a Mask2Former / MinVIS / DVIS model.

    ``backbone``: "R50" or "SwinL"; ``meta``: MaskFormer | MinVIS | DVIS_online | DVIS_offline. Tracker and
    refiner have DVIS's 6 decoder layers (``dvis/config.py`` defaults, unchanged by the VIS recipes)."""
    if backbone not in ("R50", "SwinL"):
        raise ValueError(f"backbone must be R50 or SwinL, got {backbone!r}")
    if meta not in _DECODER_OF:
        raise ValueError(f"meta must be one of {', '.join(_DECODER_OF)}, got {meta!r}")
    model: dict[str, Any] = {
        "META_ARCHITECTURE": meta,
        "BACKBONE": {"NAME": "build_resnet_backbone" if backbone == "R50" else "D2SwinTransformer", "FREEZE_AT": 0},
        "PIXEL_MEAN": [123.675, 116.28, 103.53],
        "PIXEL_STD": [58.395, 57.12, 57.375],
        "SEM_SEG_HEAD": {
            "NAME": "MaskFormerHead", "NUM_CLASSES": num_classes, "CONVS_DIM": 256, "MASK_DIM": 256, "NORM": "GN",
            "PIXEL_DECODER_NAME": "MSDeformAttnPixelDecoder", "IN_FEATURES": ["res2", "res3", "res4", "res5"],
            "DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES": ["res3", "res4", "res5"],
            "DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS": 8, "DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS": 4,
            "COMMON_STRIDE": 4, "TRANSFORMER_ENC_LAYERS": 6,
        },
        "MASK_FORMER": {
            "TRANSFORMER_DECODER_NAME": _DECODER_OF[meta], "DEEP_SUPERVISION": True, "NO_OBJECT_WEIGHT": 0.1,
            "CLASS_WEIGHT": 2.0, "MASK_WEIGHT": 5.0, "DICE_WEIGHT": 5.0, "HIDDEN_DIM": 256,
            "NUM_OBJECT_QUERIES": queries, "NHEADS": 8, "DIM_FEEDFORWARD": 2048, "PRE_NORM": False,
            "ENFORCE_INPUT_PROJ": False, "SIZE_DIVISIBILITY": 32, "DEC_LAYERS": 10, "TRAIN_NUM_POINTS": 12544,
            "OVERSAMPLE_RATIO": 3.0, "IMPORTANCE_SAMPLE_RATIO": 0.75,
            "TEST": {"WINDOW_SIZE": 3, "MAX_NUM": 10},
        },
        "TRACKER": {"DECODER_LAYERS": 6},
        "REFINER": {"DECODER_LAYERS": 6},
    }
    if backbone == "R50":
        model["RESNETS"] = dict(_R50)
    else:
        model["SWIN"] = dict(_SWIN_L)
    return {"MODEL": model, "INPUT": {"MIN_SIZE_TEST": min_size_test, "MAX_SIZE_TEST": max_size_test,
                                      "FORMAT": "RGB"}}
