"""AdamW with Mask2Former's parameter groups, and full-model gradient-norm clipping.

Groups: backbone parameters get ``BASE_LR * BACKBONE_MULTIPLIER``; parameters of normalisation layers get
``WEIGHT_DECAY_NORM`` and embeddings (nn.Embedding, Swin position tables) ``WEIGHT_DECAY_EMBED``. Frozen
parameters (requires_grad False: the earlier stages) are left out, so only the stage's module trains.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from spvis.errors import ConfigError
from spvis.modeling.meta_arch import STAGE_TRAINED_CHILDREN

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm,
              nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm)
# Swin's learned position tables are embeddings in Mask2Former's optimiser rule.
EMBED_PARAM_NAMES = ("relative_position_bias_table", "absolute_pos_embed")


def _is_norm(module: nn.Module) -> bool:
    # FrozenBatchNorm has no parameters; custom norms are recognised by name (e.g. "LayerNorm2d").
    return isinstance(module, NORM_TYPES) or "norm" in type(module).__name__.lower()


def param_groups(model: nn.Module, *, base_lr: float, weight_decay: float, weight_decay_norm: float,
                 weight_decay_embed: float, backbone_multiplier: float) -> list[dict[str, Any]]:
    """One group per trainable parameter (lr and weight decay set per its module), with its name kept."""
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{param_name}" if module_name else param_name
            lr = base_lr * (backbone_multiplier if full.startswith("backbone.") else 1.0)
            decay = weight_decay
            if _is_norm(module):
                decay = weight_decay_norm
            elif isinstance(module, nn.Embedding) or param_name in EMBED_PARAM_NAMES:
                decay = weight_decay_embed
            groups.append({"params": [param], "lr": lr, "weight_decay": decay, "name": full})
    return groups


# What each stage trains (DVIS: stage 2 freezes the segmenter, stage 3 also the tracker; reference §4).
STAGE_TRAINABLE_PREFIXES = {stage: tuple(f"{name}." for name in names)
                            for stage, names in STAGE_TRAINED_CHILDREN.items()}


def freeze_for_stage(model: nn.Module, stage: str) -> list[str]:
    """Turn off requires_grad outside the stage's own modules (never turns it on); returns the frozen names."""
    if stage not in STAGE_TRAINABLE_PREFIXES:
        raise ConfigError(f"config key STAGE must be one of {sorted(STAGE_TRAINABLE_PREFIXES)}, got {stage!r}")
    keep = STAGE_TRAINABLE_PREFIXES[stage]
    frozen = []
    for name, param in model.named_parameters():
        if param.requires_grad and not name.startswith(keep):
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def build_optimizer(cfg: Any, model: nn.Module) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``model`` from cfg.SOLVER (ConfigError when none trains)."""
    s = cfg.SOLVER
    groups = param_groups(model, base_lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY,
                          weight_decay_norm=s.WEIGHT_DECAY_NORM, weight_decay_embed=s.WEIGHT_DECAY_EMBED,
                          backbone_multiplier=s.BACKBONE_MULTIPLIER)
    if not groups:
        raise ConfigError(f"stage {cfg.STAGE!r}: the model has no trainable parameters (is every module frozen?)")
    return torch.optim.AdamW(groups, lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY)


def clip_full_model_grad(parameters: Iterable[torch.Tensor], max_norm: float) -> float:
    """Clip the gradient norm of all parameters together (Mask2Former's "full_model" clip); returns the norm."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    if max_norm <= 0:
        norms = torch.stack([p.grad.detach().norm(2) for p in params])
        return float(norms.norm(2))
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
