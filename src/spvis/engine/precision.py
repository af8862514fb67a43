"""Inference precision: TEST.HALF runs the segmenter, tracker and refiner under autocast (the model's inference
state carries it: ``autocast_name`` -> ``SPVISModel.init_state(autocast=...)``).

``bf16`` works on CPU and CUDA, ``fp16`` on CUDA only; ``auto`` (what ``--half`` sets) is fp16 on CUDA and
bf16 on CPU. Everything that leaves the network for numpy or scipy (matching costs, scores, masks) is cast
back to float32 first, so results code never sees a half-precision tensor.
"""

from __future__ import annotations

import torch

from spvis.errors import ConfigError

HALF_CHOICES = ("", "auto", "bf16", "fp16")


def autocast_dtype(half: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of TEST.HALF on ``device`` (None = full precision)."""
    if not half:
        return None
    if half == "auto":
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    if half == "fp16" and device.type != "cuda":
        raise ConfigError("config key TEST.HALF=fp16 needs a CUDA device; use bf16 (or --half) on CPU")
    if half not in HALF_CHOICES:
        raise ConfigError(f"config key TEST.HALF must be one of {HALF_CHOICES}, got {half!r}")
    return torch.bfloat16 if half == "bf16" else torch.float16


AUTOCAST_NAMES = {None: "", torch.bfloat16: "bf16", torch.float16: "fp16"}


def autocast_name(cfg, device: torch.device) -> str:
    """TEST.HALF on ``device`` as the model's inference-state name: '' | bf16 | fp16."""
    return AUTOCAST_NAMES[autocast_dtype(str(cfg.TEST.HALF), device)]
