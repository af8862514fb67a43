"""Our weight format: ``<stem>.safetensors`` + the full config as ``<stem>.yaml`` beside it.

Writing is atomic (temp file + rename) so a crash never leaves a half-written checkpoint; reading
never unpickles anything.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from spvis.checkpoints.loading import load_state_strict
from spvis.config.node import CfgNode
from spvis.errors import CheckpointError
from spvis.utils.atomic_io import atomic_save, atomic_write_text


def config_path_for(weights_path: str | Path) -> Path:
    """The config YAML that belongs to a weights file (same stem, .yaml)."""
    return Path(weights_path).with_suffix(".yaml")


def save_weights(path: str | Path, model: nn.Module, cfg: CfgNode) -> Path:
    """Write the model's state dict as safetensors and ``cfg`` as YAML beside it; returns the weights path."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: our weights files end in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies
    state = {key: value.detach().to("cpu").contiguous().clone() for key, value in model.state_dict().items()}
    atomic_save(path, lambda tmp: save_file(state, tmp, metadata={"format": "spvis"}))
    atomic_write_text(config_path_for(path), cfg.dump())
    return path


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], CfgNode]:
    """(state_dict, cfg) of our weights file; the config comes from the YAML beside it."""
    from safetensors.torch import load_file

    from spvis.config import load_config

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    cfg_path = config_path_for(path)
    if not cfg_path.is_file():
        raise CheckpointError(f"{path}: its config {cfg_path.name} is missing (saved weights come with a YAML)")
    try:
        state = dict(load_file(str(path)))
    except Exception as exc:  # safetensors has its own error classes for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    return state, load_config(cfg_path)


def load_weights_into(model: nn.Module, path: str | Path) -> None:
    """Load our safetensors weights into a built model, naming every missing/unexpected/mis-shaped key."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: MODEL.WEIGHTS file not found")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: MODEL.WEIGHTS must be our .safetensors file "
                              f"(convert official files with `spvis checkpoint import`)")
    try:
        state = dict(load_file(str(path)))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    load_state_strict(model, state, source=str(path))
