"""What a model argument names: a weights file or model folder on disk, or a zoo entry (fetched on first use)."""

from __future__ import annotations

from pathlib import Path

from spvis.errors import SpvisError


def resolve_model(src: str | Path) -> Path:
    """The weights path ``spvis.load`` / ``--model`` mean by ``src``: an existing file or folder as it is, the
    built-in model for ``demo``, else the cached (or now fetched) folder of the zoo entry of that name."""
    from spvis.engine.inference import BUILTIN_WEIGHTS
    from spvis.zoo.cache import ensure_model
    from spvis.zoo.registry import list_entries

    path = Path(src)
    if path.exists():
        return path
    entries = {entry.name: entry for entry in list_entries()}
    entry = entries.get(str(src))
    if entry is None:
        raise SpvisError(f"{src}: no such weights file or model folder, and no zoo model of that name "
                         f"(`spvis models` lists them)")
    if entry.kind == "builtin":
        return BUILTIN_WEIGHTS
    return ensure_model(entry)
