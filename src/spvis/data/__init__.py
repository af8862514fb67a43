"""Datasets, clip sampling and frame reading (YouTube-VIS / OVIS / COCO pseudo-videos / VIPSeg / VSPW / synthetic).

Public names are imported lazily so that ``import spvis.data`` stays cheap (no torch) for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_video_dataset": "spvis.data.ytvis",
    "VideoDataset": "spvis.data.ytvis",
    "VideoRecord": "spvis.data.ytvis",
    "Track": "spvis.data.ytvis",
    "load_coco_instances": "spvis.data.coco",
    "register_dataset": "spvis.data.catalog",
    "resolve_dataset": "spvis.data.catalog",
    "register_from_config": "spvis.data.catalog",
    "load_dataset": "spvis.data.catalog",
    "ClipDataset": "spvis.data.clip_dataset",
    "build_clip_dataset": "spvis.data.clip_dataset",
    "collate_clips": "spvis.data.clip_dataset",
    "build_train_loader": "spvis.data.loader",
    "InfiniteClipSampler": "spvis.data.loader",
    "EpochShuffle": "spvis.data.sample_order",
    "open_frame_source": "spvis.data.frames",
    "generate_synthetic_dataset": "spvis.data.synth",
    "load_vipseg": "spvis.data.vipseg",
    "PanopticDataset": "spvis.data.vipseg",
    "load_vspw": "spvis.data.vspw",
    "VSPWDataset": "spvis.data.vspw",
    "generate_panoptic_dataset": "spvis.data.synth_panoptic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spvis.data' has no attribute {name!r}")
