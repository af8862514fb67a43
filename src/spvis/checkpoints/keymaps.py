"""Explicit key maps from official checkpoint layouts to ours (reference §8).

Our module tree keeps the official names, so most keys map to themselves; the table below lists the
only renames and the keys that are deliberately dropped. Anything not covered is reported by name
by ``loading.load_state_strict`` rather than silently skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from spvis.checkpoints.unpickler import read_state_dict
from spvis.errors import CheckpointError

# top-level prefixes a model checkpoint may hold
MODEL_PREFIXES = ("backbone.", "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor.", "tracker.", "refiner.")

# keys that exist in official files but carry no weights of the model (loss buffers, cached constants)
DROPPED_KEY_PATTERNS = (
    re.compile(r"^criterion\.empty_weight$"),  # loss-only buffer (ones, last = eos_coef)
    re.compile(r"\.relative_position_index$"),  # Swin: constant index, rebuilt by timm
    re.compile(r"\.attn_mask$"),  # Swin: cached shift masks
    re.compile(r"\.num_batches_tracked$"),  # BatchNorm counter
)

# (pattern, replacement) renames applied in order
RENAMES = (
    (re.compile(r"^offline_tracker\."), "refiner."),  # older DVIS checkpoints (utils/convert_trained_model.py)
    (re.compile(r"^(sem_seg_head\.predictor\.)static_query\."), r"\1query_feat."),  # old Mask2Former name
)

_SWIN_DOWNSAMPLE = re.compile(r"^(backbone\.)?layers\.(\d+)\.downsample\.")


def _swin_official_to_timm(key: str) -> str:
    """Official Swin closes stage s with layers.s.downsample; timm opens stage s+1 with it."""
    match = _SWIN_DOWNSAMPLE.match(key)
    if not match:
        return key
    prefix = match.group(1) or ""
    return f"{prefix}layers.{int(match.group(2)) + 1}.downsample." + key[match.end():]


def official_to_ours(state: dict[str, torch.Tensor], *, backbone: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an official DVIS/Mask2Former state dict to our keys; returns (state, dropped key names)."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        if any(pattern.search(key) for pattern in DROPPED_KEY_PATTERNS):
            dropped.append(key)
            continue
        new_key = key
        for pattern, replacement in RENAMES:
            new_key = pattern.sub(replacement, new_key)
        if backbone == "swin" and new_key.startswith("backbone."):
            new_key = _swin_official_to_timm(new_key)
        if new_key in out:
            raise CheckpointError(f"two checkpoint keys map to {new_key!r} (one of them is {key!r})")
        out[new_key] = value
    return out, dropped


def _torchvision_resnet_key(key: str) -> str | None:
    """detectron2-layout name of a torchvision ResNet key (None for the classifier ``fc.*``)."""
    if key.startswith("fc."):
        return None
    if re.match(r"^conv1\.weight$", key):
        return "stem.conv1.weight"
    if m := re.match(r"^bn1\.(\w+)$", key):
        return f"stem.conv1.norm.{m.group(1)}"
    if m := re.match(r"^layer(\d)\.(\d+)\.conv(\d)\.weight$", key):
        return f"res{int(m.group(1)) + 1}.{m.group(2)}.conv{m.group(3)}.weight"
    if m := re.match(r"^layer(\d)\.(\d+)\.bn(\d)\.(\w+)$", key):
        return f"res{int(m.group(1)) + 1}.{m.group(2)}.conv{m.group(3)}.norm.{m.group(4)}"
    if m := re.match(r"^layer(\d)\.(\d+)\.downsample\.0\.weight$", key):
        return f"res{int(m.group(1)) + 1}.{m.group(2)}.shortcut.weight"
    if m := re.match(r"^layer(\d)\.(\d+)\.downsample\.1\.(\w+)$", key):
        return f"res{int(m.group(1)) + 1}.{m.group(2)}.shortcut.norm.{m.group(3)}"
    return key


_C2_SUFFIX = {"w": "weight", "bn_s": "norm.weight", "bn_b": "norm.bias"}
_C2_BRANCH = {"branch2a": "conv1", "branch2b": "conv2", "branch2c": "conv3", "branch1": "shortcut"}


def _c2_resnet_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Caffe2/MSRA ResNet names (conv1_w, res2_0_branch2a_bn_s, ...) -> detectron2 layout.

    C2 stores the frozen BN as a plain affine (scale, bias): running_mean = 0 and running_var = 1 - eps
    make our FrozenBatchNorm2d apply exactly that affine.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(("pred_", "fc1000_")):  # ImageNet classifier
            continue
        if key == "conv1_w":
            out["stem.conv1.weight"] = value
            continue
        if m := re.match(r"^res_conv1_(bn_[sb])$", key):
            out[f"stem.conv1.{_C2_SUFFIX[m.group(1)]}"] = value
            continue
        m = re.match(r"^res(\d)_(\d+)_(branch2a|branch2b|branch2c|branch1)_(w|bn_s|bn_b)$", key)
        if not m:
            raise CheckpointError(f"unrecognised Caffe2 ResNet weight name {key!r}")
        out[f"res{m.group(1)}.{m.group(2)}.{_C2_BRANCH[m.group(3)]}.{_C2_SUFFIX[m.group(4)]}"] = value
    for key in [k for k in out if k.endswith("norm.weight")]:
        prefix = key[: -len("weight")]
        out[prefix + "running_mean"] = torch.zeros_like(out[key])
        out[prefix + "running_var"] = torch.ones_like(out[key]) - 1e-5
    return out


def backbone_state_from_file(path: Path, *, kind: str) -> dict[str, torch.Tensor]:
    """Backbone-only weights (our key names, no ``backbone.`` prefix) from a local pretrained file.

    Accepts detectron2-layout files (with or without ``backbone.``), Caffe2/MSRA ResNet ``.pkl``
    (``res2_0_branch2a_w``), torchvision ResNet ``.pth`` and official or timm Swin files; classifier heads
    are dropped.
    """
    state = read_state_dict(path)
    if any(key.startswith("backbone.") for key in state):
        state = {key[len("backbone."):]: value for key, value in state.items() if key.startswith("backbone.")}
    state = {key: value for key, value in state.items()
             if not any(pattern.search(key) for pattern in DROPPED_KEY_PATTERNS)}
    if kind == "resnet" and "conv1_w" in state:
        return _c2_resnet_state(state)
    if kind == "resnet":  # detectron2's torchvision conversion may keep the classifier
        state = {key: value for key, value in state.items() if not re.match(r"^fc(1000)?[._]", key)}
    if kind == "resnet" and any(key.startswith("layer1.") for key in state):
        converted = {}
        for key, value in state.items():
            new_key = _torchvision_resnet_key(key)
            if new_key is not None:
                converted[new_key] = value
        return converted
    if kind == "mobilenet_v2":  # torchvision's file: drop the classifier and the final 1x1 conv (block 18)
        return {key: value for key, value in state.items()
                if not key.startswith("classifier.") and not key.startswith("features.18.")}
    if kind == "swin":
        state = {key: value for key, value in state.items() if not key.startswith("head.") and key != "norm.weight"
                 and key != "norm.bias"}
        # official Swin files close stages with downsample; timm files open the next one with it
        if any(key.startswith("layers.0.downsample.") for key in state):
            state = {_swin_official_to_timm(key): value for key, value in state.items()}
    return state
