"""Our weight files, read and written here only: safetensors + the full config as YAML, and training checkpoints.

Two layouts of inference weights, accepted everywhere a weights path is:

* a file ``<stem>.safetensors`` with its config ``<stem>.yaml`` beside it;
* a model folder ``DIR/`` holding ``model.safetensors``, ``config.yaml`` and ``MODEL_CARD.md`` (written by
  ``VideoSegmenter.save_pretrained`` and by ``spvis checkpoint import --out DIR``).

A training checkpoint (``model_<iter>.pth``, resume everything) is a ``torch.save`` dict of tensors, numbers
and strings, its config the YAML text under ``"config"``; it is read with ``torch.load(weights_only=True)``.
Which checkpoints a run keeps and how a stage starts from another's weights is ``spvis.engine.checkpointing``'s.

Writing is atomic (temp file + rename) so a crash never leaves a half-written checkpoint; reading
never unpickles anything. Every stored config comes back as a ``CfgNode`` (defaults + the stored values).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spvis.checkpoints.loading import load_state_strict
from spvis.config.node import CfgNode
from spvis.errors import CheckpointError
from spvis.utils.atomic_io import atomic_save, atomic_write_bytes, atomic_write_text

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


def write_training_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a training checkpoint dict with ``torch.save``, atomically; returns ``path``."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint dict, loaded with ``weights_only=True`` (CheckpointError naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign or unsafe content: one line, no traceback
        raise CheckpointError(f"{path}: not a loadable SPVIS training checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    for field in ("model", "optimizer", "scheduler", "iteration", "stage"):
        if not isinstance(data, dict) or field not in data:
            raise CheckpointError(f"{path}: field '{field}' missing; not an SPVIS training checkpoint")
    return data


def inference_state(data: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a training checkpoint stands for: its EMA average when it holds one, else the model's."""
    ema = data.get("ema") or {}
    return ema["state"] if ema.get("state") else data["model"]


def training_config(data: dict[str, Any], source: str | Path) -> CfgNode:
    """The config a training checkpoint stores (YAML text under ``"config"``) as a CfgNode; CheckpointError
    naming ``source`` when it is not YAML."""
    import yaml

    from spvis.config import config_from_dict

    try:
        values = yaml.safe_load(data.get("config") or "") or {}
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{source}: field 'config' is not readable YAML ({str(exc).splitlines()[0]})") \
            from None
    return config_from_dict(values)


def is_training_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is an existing training checkpoint file (``.pth`` / ``.pt``) rather than our weights."""
    path = Path(path)
    return path.suffix in (".pth", ".pt") and path.is_file()


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], CfgNode | None]:
    """(state_dict, stored config or None) of our weights (file or model folder) or a training checkpoint, the
    inputs MODEL.WEIGHTS accepts; the config is None when no YAML lies beside a weights file."""
    from spvis.config import load_config

    if is_training_checkpoint(path):
        data = load_training_checkpoint(path)
        return inference_state(data), training_config(data, path)
    state = read_safetensors(path, what="weights file (config key MODEL.WEIGHTS)")
    cfg_path = config_path_for(path)
    return state, load_config(cfg_path) if cfg_path.is_file() else None


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
