"""Typed fields and id-keyed entry lists of dataset json files, each error one line naming file, entry and field.

The YTVIS / OVIS loader (``spvis.data.ytvis``), the COCO image loader (``spvis.data.coco``) and the evaluation
ground truth (``spvis.evaluation.ground_truth``) read the same shapes: lists of objects with a unique integer
``id``, integer sizes, 0/1 flags. They are checked here, so one bad field reads the same in every loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from spvis.errors import DataFormatError


def int_field(path: str | Path, obj: dict, key: str, entry: str, *, positive: bool = False) -> int:
    """``obj[key]`` as an int (bool refused; ``positive``: > 0), else DataFormatError naming entry and key."""
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DataFormatError(path, f"must be an integer, got {value!r}", entry=entry, field=key)
    if positive and value <= 0:
        raise DataFormatError(path, f"must be positive, got {value}", entry=entry, field=key)
    return value


def flag_field(path: str | Path, obj: dict, key: str, entry: str) -> bool:
    """A 0/1 (or true/false) flag such as ``iscrowd``; absent or null reads as 0."""
    value = obj.get(key, 0)
    if value is None:
        return False
    if value not in (0, 1) or not isinstance(value, (int, bool)):
        raise DataFormatError(path, f"must be 0 or 1, got {value!r}", entry=entry, field=key)
    return bool(value)


def unique_entries(path: str | Path, items: list[Any], plural: str, singular: str) -> Iterator[tuple[dict, int]]:
    """(object, id) of each entry of a json list such as ``annotations``, in order; DataFormatError for an entry
    that is not an object (``annotations[3]``), an id that is not an integer, or an id seen before
    (``annotation 12``)."""
    seen: set[int] = set()
    for i, obj in enumerate(items):
        if not isinstance(obj, dict):
            raise DataFormatError(path, "must be an object", entry=f"{plural}[{i}]")
        obj_id = int_field(path, obj, "id", f"{plural}[{i}]")
        if obj_id in seen:
            raise DataFormatError(path, f"duplicate {singular} id", entry=f"{singular} {obj_id}", field="id")
        seen.add(obj_id)
        yield obj, obj_id
