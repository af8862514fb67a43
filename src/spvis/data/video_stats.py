"""The video counts every dataset format's statistics share, and the lines that print them.

``spvis data check`` reports YTVIS-style (``spvis.data.check``), VIPSeg (``spvis.data.vipseg``) and VSPW
(``spvis.data.vspw``) datasets; all three start with the same videos / frames / lengths / sizes block, built
and printed here so the three formats cannot drift apart; their per-category tables print with ``count_table``.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np


def video_counts(lengths: list[int], sizes: Iterable[str]) -> dict:
    """``videos``, ``frames``, ``length_min`` / ``_median`` / ``_max`` (0 without videos) and ``frame_sizes``
    ("HxW" -> videos, most common first) of videos with these frame counts and "HxW" sizes."""
    return {
        "videos": len(lengths),
        "frames": int(sum(lengths)),
        "length_min": int(min(lengths)) if lengths else 0,
        "length_median": float(np.median(lengths)) if lengths else 0.0,
        "length_max": int(max(lengths)) if lengths else 0,
        "frame_sizes": dict(Counter(sizes).most_common()),
    }


def video_summary_line(stats: dict) -> str:
    """The 'videos / frames / lengths / sizes' line every dataset format's statistics print."""
    return (f"videos: {stats['videos']}  frames: {stats['frames']}  length min/median/max: "
            f"{stats['length_min']}/{stats['length_median']:g}/{stats['length_max']}  sizes: "
            + ", ".join(f"{k} ({v})" for k, v in list(stats["frame_sizes"].items())[:5]))


def count_table(first: str, columns: list[str], rows: dict[str, list[int]]) -> list[str]:
    """Indented table lines: a header (``first`` over the names, then ``columns``) and one line per name with its
    counts right-aligned under their column names."""
    width = max((len(name) for name in rows), default=8)
    lines = [f"  {first:<{width}}  " + "  ".join(columns)]
    for name, values in rows.items():
        lines.append(f"  {name:<{width}}  " + "  ".join(f"{v:>{len(c)}}" for v, c in zip(values, columns)))
    return lines
