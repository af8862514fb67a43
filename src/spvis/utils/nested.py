"""Flatten nested dicts into one level of joined keys (config trees for settings records, metric trees for logs)."""

from __future__ import annotations

from typing import Any


def flatten_dict(tree: dict, separator: str = ".", prefix: str = "") -> dict[str, Any]:
    """{"A": {"B": 1}} -> {"A.B": 1} (with ``separator`` "."); leaves that are not dicts are kept as they are."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten_dict(value, separator, f"{prefix}{key}{separator}"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
