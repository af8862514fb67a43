"""Configuration: ``get_cfg()`` returns every default; ``load_config(file, overrides)`` merges a file and overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from spvis.config.defaults import SCHEMA
from spvis.config.node import PACKAGE_CONFIGS, CfgNode, Key, build_node, describe, packaged_config

__all__ = ["CfgNode", "Key", "get_cfg", "load_config", "config_from_dict", "describe", "SCHEMA"]


def get_cfg() -> CfgNode:
    """A fresh config holding every declared default."""
    return build_node(SCHEMA)


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> CfgNode:
    """Defaults, then the YAML file (with its ``_BASE_`` chain), then ``KEY=VALUE`` overrides."""
    cfg = get_cfg()
    if path:
        cfg.merge_file(resolve_config_path(path))
    cfg.merge_overrides(overrides)
    return cfg


BUILTIN_CONFIGS = PACKAGE_CONFIGS


def resolve_config_path(path: str | Path) -> Path:
    """``path`` itself when it exists, else the config shipped in the package (``synth/segmenter.yaml``,
    ``configs/ovis/dvis_online_R50.yaml``), so installed users can name builtin recipes from anywhere."""
    path = Path(path)
    if path.exists():
        return path
    return packaged_config(path) or path


def config_from_dict(values: dict) -> CfgNode:
    """Defaults updated with a nested dict (e.g. the config stored beside a checkpoint)."""
    cfg = get_cfg()
    cfg.merge_dict(values, source="<stored config>")
    return cfg
