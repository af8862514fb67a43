"""MODEL_CARD.md of a model folder: what the weights predict, how well, how they were made, under which licence.

Written beside ``model.safetensors`` + ``config.yaml`` so a folder handed to someone else says what it is
(torchvision's weight entries carry categories, recipe and metrics for the same reason).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from spvis.config.node import CfgNode
from spvis.utils.atomic_io import atomic_write_text

CARD_NAME = "MODEL_CARD.md"
# metrics.json keys shown in the card, in this order (fractions, shown x100)
CARD_METRICS = ("AP", "AP50", "AP75", "AR1", "AR10")
CARD_TRACKING = ("HOTA", "AssA", "IDF1", "MOTA")
DEFAULT_LICENSE = ("not stated: the SPVIS code is MIT-licensed; weights follow the terms of the data they were "
                   "trained on")


def _backbone(cfg: CfgNode) -> str:
    name = cfg.MODEL.BACKBONE.NAME
    return f"ResNet-{cfg.MODEL.BACKBONE.DEPTH}" if name == "resnet" else name


def _parts(cfg: CfgNode) -> str:
    parts = ["segmenter"]
    if cfg.MODEL.TRACKER.ENABLED:
        parts.append("tracker (online)")
    if cfg.MODEL.REFINER.ENABLED:
        parts.append("refiner (offline)")
    return " + ".join(parts)


def _metric_rows(metrics: Mapping | None) -> list[str]:
    if not metrics:
        return ["Not measured: run `spvis eval` on a dataset with ground truth and save again with its metrics."]
    rows = ["| metric | value |", "|---|---:|"]
    for key in CARD_METRICS:
        if isinstance(metrics.get(key), (int, float)):
            rows.append(f"| {key} | {100 * float(metrics[key]):.1f} |")
    tracking = (metrics.get("tracking") or {}).get("class_avg") or {}
    for key in CARD_TRACKING:
        if isinstance(tracking.get(key), (int, float)):
            rows.append(f"| {key} | {100 * float(tracking[key]):.1f} |")
    info = metrics.get("info") or {}
    if info.get("gt"):
        rows.append(f"\nMeasured on `{Path(str(info['gt'])).name}` ({info.get('num_videos', '?')} videos).")
    return rows


def model_card_text(cfg: CfgNode, *, names: Sequence[str] = (), metrics: Mapping | None = None,
                    recipe: str | None = None, license: str | None = None) -> str:
    """The markdown of a model card (see the module docstring)."""
    from spvis import __version__

    lines = [
        "# SPVIS video instance segmentation model", "",
        f"- parts: {_parts(cfg)}",
        f"- backbone: {_backbone(cfg)}; {cfg.MODEL.DECODER.NUM_QUERIES} queries; {cfg.MODEL.NUM_CLASSES} classes",
        f"- test input: shortest edge {cfg.INPUT.MIN_SIZE_TEST}, longest at most {cfg.INPUT.MAX_SIZE_TEST}",
        f"- spvis version: {__version__}",
        f"- licence: {license or DEFAULT_LICENSE}", "",
        "## Classes", "", "| id | name |", "|---:|---|",
    ]
    shown = list(names) or [f"class {k}" for k in range(cfg.MODEL.NUM_CLASSES)]
    lines += [f"| {k} | {name} |" for k, name in enumerate(shown)]
    lines += ["", "## Metrics", "", *_metric_rows(metrics), "", "## Recipe", ""]
    if recipe:
        lines.append(recipe)
    lines += [f"- stage: {cfg.STAGE}; trained on: {', '.join(map(str, cfg.DATASETS.TRAIN)) or 'not recorded'}",
              f"- initialised from: {cfg.MODEL.WEIGHTS or 'random / not recorded'}",
              f"- solver: {cfg.SOLVER.MAX_ITER} iterations, batch {cfg.SOLVER.IMS_PER_BATCH}, "
              f"base LR {cfg.SOLVER.BASE_LR:g}", "",
              "## Use", "", "```python", "import spvis", "", 'model = spvis.load("path/to/this/folder")',
              'result = model.predict("video.mp4")', "```", "",
              "Files: `model.safetensors` (weights), `config.yaml` (the full config), this card.", ""]
    return "\n".join(lines)


def write_model_card(folder: str | Path, cfg: CfgNode, **card: object) -> Path:
    """Write ``folder/MODEL_CARD.md`` atomically; ``card`` = names, metrics, recipe, license."""
    path = Path(folder) / CARD_NAME
    atomic_write_text(path, model_card_text(cfg, **card))  # type: ignore[arg-type]
    return path
