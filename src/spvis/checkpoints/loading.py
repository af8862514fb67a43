"""The one strict loader: a state dict into a model, every missing, unexpected or mis-shaped key named.

Used by every path that puts weights into a model (our safetensors, official imports, training
checkpoints, stage chaining, pretrained backbones), so a wrong file never trains or predicts silently
from random weights. Only keys under the ``allow_missing_prefixes`` the caller names may be missing.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from spvis.errors import CheckpointError


def _group(keys: list[str], limit: int = 8) -> str:
    """Compact listing: keys grouped by their first two name parts, with counts and one full example."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        groups[".".join(key.split(".")[:2])].append(key)
    parts = [f"{prefix}.* x{len(members)} (e.g. {members[0]})" if len(members) > 1 else members[0]
             for prefix, members in groups.items()]
    more = f" ... (+{len(parts) - limit} more groups)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def compare_state(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped) keys of `state` against the model's state dict."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatched = [
        f"{key} (checkpoint {list(state[key].shape)} vs model {list(expected[key].shape)})"
        for key in expected if key in state and tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    return missing, unexpected, mismatched


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str,
                      allow_missing_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Copy `state` into `model` (cast to the model's dtypes); raise CheckpointError naming any disagreement.

    Returns the keys that were missing under ``allow_missing_prefixes`` (left at their initial values).
    """
    missing, unexpected, mismatched = compare_state(model, state)
    allowed = [key for key in missing if key.startswith(allow_missing_prefixes)] if allow_missing_prefixes else []
    missing = [key for key in missing if key not in set(allowed)]
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} mis-shaped: " + "; ".join(mismatched[:8])
                        + (f" ... (+{len(mismatched) - 8} more)" if len(mismatched) > 8 else ""))
    if missing:
        problems.append(f"{len(missing)} missing: " + _group(missing))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: " + _group(unexpected))
    if problems:
        raise CheckpointError(f"{source}: weights do not fit the model ({' | '.join(problems)})")
    expected = model.state_dict()
    converted = {key: value.to(expected[key].dtype) for key, value in state.items()}
    model.load_state_dict(converted, strict=False)
    return sorted(allowed)
