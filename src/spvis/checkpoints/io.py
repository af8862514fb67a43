"""Our weight format, read and written here only: safetensors + the full config as YAML.

Two layouts, accepted everywhere a weights path is:

* a file ``<stem>.safetensors`` with its config ``<stem>.yaml`` beside it;
* a model folder ``DIR/`` holding ``model.safetensors``, ``config.yaml`` and ``MODEL_CARD.md`` (written by
  ``VideoSegmenter.save_pretrained`` and by ``spvis checkpoint import --out DIR``).

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

WEIGHTS_SUFFIX = ".safetensors"
FOLDER_WEIGHTS = "model.safetensors"  # the weights inside a model folder
FOLDER_CONFIG = "config.yaml"  # the config inside a model folder


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` names a folder (existing, or to be written: no .safetensors suffix)."""
    path = Path(path)
    return path.is_dir() or (not path.exists() and path.suffix != WEIGHTS_SUFFIX)


def weights_file(path: str | Path) -> Path:
    """The safetensors file a weights path names: the file itself, or ``model.safetensors`` in a folder."""
    path = Path(path)
    return path / FOLDER_WEIGHTS if path.is_dir() else path


def config_path_for(weights_path: str | Path) -> Path:
    """The config YAML that belongs to a weights file: ``<stem>.yaml``, else a model folder's config.yaml."""
    weights = weights_file(weights_path)
    beside = weights.with_suffix(".yaml")
    folder_config = weights.parent / FOLDER_CONFIG
    if not beside.is_file() and weights.name == FOLDER_WEIGHTS and folder_config.is_file():
        return folder_config
    return beside


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model under a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_weights(path: str | Path, model: nn.Module, cfg: CfgNode) -> Path:
    """Write the model's state dict as safetensors and ``cfg`` as YAML; returns the weights file.

    ``path`` ending in .safetensors: that file + ``<stem>.yaml``; any other path is a model folder that
    receives ``model.safetensors`` + ``config.yaml``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if is_model_folder(path):
        weights, config = path / FOLDER_WEIGHTS, path / FOLDER_CONFIG
    else:
        weights, config = path, path.with_suffix(".yaml")
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies
    state = {key: value.detach().to("cpu").contiguous().clone() for key, value in unwrap(model).state_dict().items()}
    atomic_save(weights, lambda tmp: save_file(state, tmp, metadata={"format": "spvis", "stage": str(cfg.STAGE)}))
    atomic_write_text(config, cfg.dump())
    return weights


def read_safetensors(path: str | Path, *, what: str = "weights file") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (a model folder's model.safetensors); one-line errors."""
    from safetensors.torch import load_file

    given = Path(path)
    path = weights_file(given)
    if given.is_dir() and not path.is_file():
        raise CheckpointError(f"{given}: model folder has no {FOLDER_WEIGHTS}")
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    if path.suffix != WEIGHTS_SUFFIX:
        raise CheckpointError(f"{path}: our weights are .safetensors files or model folders "
                              f"(convert official files with `spvis checkpoint import`)")
    try:
        return dict(load_file(str(path)))
    except Exception as exc:  # safetensors has its own error classes for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def first_non_finite(state: dict[str, torch.Tensor]) -> tuple[str, int, int] | None:
    """(name, bad values, values) of the first floating-point tensor holding a NaN or an infinity, else None."""
    for name, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                return name, bad, tensor.numel()
    return None


def require_finite(state: dict[str, torch.Tensor], source: str | Path) -> None:
    """CheckpointError naming ``source`` and the first tensor with NaN/inf values: such weights (a diverged
    run, a damaged copy) would run and silently output garbage."""
    bad = first_non_finite(state)
    if bad is not None:
        name, count, total = bad
        raise CheckpointError(f"{source}: tensor '{name}' holds {count} NaN/inf value(s) of {total}; these "
                              f"weights are broken (a diverged training run or a damaged file)")


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], CfgNode]:
    """(state_dict, cfg) of our weights file or model folder; the config comes from the YAML beside it.
    Weights holding NaN/inf values are refused."""
    from spvis.config import load_config

    state = read_safetensors(path)
    require_finite(state, weights_file(path))
    cfg_path = config_path_for(path)
    if not cfg_path.is_file():
        raise CheckpointError(f"{weights_file(path)}: its config {cfg_path.name} is missing "
                              f"(saved weights come with a YAML)")
    return state, load_config(cfg_path)


def load_weights_into(model: nn.Module, path: str | Path) -> None:
    """Load our safetensors weights into a built model, naming every missing/unexpected/mis-shaped key."""
    load_state_strict(model, read_safetensors(path, what="MODEL.WEIGHTS file"), source=str(weights_file(path)))
