"""``spvis models``: the model zoo (what each entry predicts, how well its authors say, from where, under which
licence); ``spvis models NAME`` prints one entry's model card."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models", help="list the model zoo (official DVIS / Mask2Former weights, the built-in demo model)",
        description="List every zoo model: name, task, dataset, backbone, mode, the AP its authors report, "
                    "source, licence, size and whether it is cached. `spvis infer --model NAME` and "
                    "spvis.load(NAME) fetch and convert an entry on first use.")
    parser.add_argument("name", nargs="?", help="print this entry's model card instead of the list")
    parser.add_argument("--json", action="store_true", help="machine-readable list (every field of every entry)")
    parser.set_defaults(func=run)


def status(entry: Any) -> str:
    """cached | built in | download on first use | manual download | listed only."""
    from spvis.zoo.cache import is_cached

    if entry.kind == "builtin":
        return "built in"
    if not entry.loadable:
        return "listed only"
    if is_cached(entry):
        return "cached"
    return "manual download" if entry.kind == "manual" else "download on first use"


def short_source(entry: Any) -> str:
    """Where the file comes from, in a table cell: the package, a Hub repo or the download host."""
    from urllib.parse import urlsplit

    if entry.kind == "builtin":
        return "package"
    if entry.kind == "hub":
        return f"hf:{entry.repo_id}"
    host = urlsplit(entry.url.split(" or ")[0]).hostname or entry.url
    return f"{host} (by hand)" if entry.kind == "manual" else host


def run(args: argparse.Namespace) -> int:
    from spvis.zoo.registry import get_entry, list_entries

    if args.name:
        print(card(get_entry(args.name)))
        return 0
    entries = list_entries()
    if args.json:
        print(json.dumps([{**entry.to_dict(), "status": status(entry)} for entry in entries], indent=1))
        return 0
    rows = [("name", "task", "dataset", "backbone", "mode", "AP*", "source", "licence", "size", "status")]
    for entry in entries:
        ap = f"{entry.reported_ap:.1f}" if entry.reported_ap is not None else "-"
        rows.append((entry.name, entry.task.split(" (")[0], entry.dataset.split(" (")[0], entry.backbone, entry.mode,
                     ap, short_source(entry), entry.licence.split(" (")[0], entry.size or "-", status(entry)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("\n* AP as reported by each model's authors on its benchmark (`spvis models NAME` says which), not "
          "measured by spvis.\nSources and full licences: `spvis models NAME` or `spvis models --json`.")
    return 0


def card(entry: Any) -> str:
    """The model card: the cached folder's MODEL_CARD.md, the built-in model's, or the entry's facts."""
    from spvis.zoo.cache import is_cached, model_folder
    from spvis.zoo.card import zoo_card_text

    if is_cached(entry):
        return (model_folder(entry) / "MODEL_CARD.md").read_text(encoding="utf-8")
    if entry.kind == "builtin":
        from spvis.config import load_config
        from spvis.engine.inference import BUILTIN_WEIGHTS

        return zoo_card_text(entry, load_config(BUILTIN_WEIGHTS.with_suffix(".yaml")))
    ap = f"{entry.reported_ap:.1f}" if entry.reported_ap is not None else "not reported"
    lines = [f"# {entry.name}", "", f"- task: {entry.task}; dataset: {entry.dataset}; mode: {entry.mode}; "
             f"backbone: {entry.backbone}", f"- trained on: {entry.trained_on or 'not stated'}",
             f"- AP reported by the authors: {ap} on {entry.benchmark}", f"- source: {entry.source}",
             f"- licence: {entry.licence}", f"- classes ({len(entry.class_names)}): {', '.join(entry.class_names)}",
             f"- status: {status(entry)}"]
    if entry.unsupported:
        lines.append(f"- cannot be loaded yet: {entry.unsupported}")
    return "\n".join(lines)
