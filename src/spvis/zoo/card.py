"""MODEL_CARD.md of a zoo model: the generic card of its weights, headed by the zoo's facts."""

from __future__ import annotations

import copy
from typing import Any

from spvis.checkpoints.model_card import model_card_text
from spvis.zoo.registry import ZooEntry


def zoo_card_text(entry: ZooEntry, cfg: Any, *, source_sha256: str = "") -> str:
    """The card: name, what it predicts and was trained on, the authors' reported AP (not measured here),
    source, licence, then the generic card of the weights (parts, backbone, classes, config)."""
    ap = f"{entry.reported_ap:.1f}" if entry.reported_ap is not None else "not reported"
    head = [
        f"# {entry.name}", "",
        f"- task: {entry.task}; dataset: {entry.dataset}; mode: {entry.mode}; backbone: {entry.backbone}",
        f"- trained on: {entry.trained_on or 'not stated'}",
        (f"- AP measured by SPVIS: {ap} on {entry.benchmark}" if entry.kind == "builtin" else
         f"- AP reported by the authors: {ap} on {entry.benchmark} (not re-measured by spvis)"),
        f"- source: {entry.source}" + (f" (sha256 {source_sha256})" if source_sha256 else ""),
        f"- licence: {entry.licence}",
    ]
    if entry.kind == "builtin":
        recipe = "Trained by SPVIS's own recipe (`bash scripts/build_demo_model.sh`, configs/synth_v4/)."
    else:
        head.append("- converted by `spvis checkpoint import` (every key and shape checked)")
        recipe = f"Official weights of the {entry.name} zoo entry, converted; see the source above."
    shown = copy.deepcopy(cfg)
    if entry.trained_on:
        shown.DATASETS.TRAIN = [entry.trained_on]
    body = model_card_text(shown, names=list(entry.class_names), recipe=recipe, license=entry.licence)
    return "\n".join(head) + "\n" + body.split("\n", 1)[1]
