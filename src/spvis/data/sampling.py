"""Training frame sampling (DVIS ``select_frames``, reference §4) and pseudo-video lengths."""

from __future__ import annotations

import numpy as np


def select_frames(rng: np.random.Generator, length: int, num: int, frame_range: int, *,
                  consecutive: bool = False, reverse: bool = False) -> list[int]:
    """Indices of ``num`` frames of a ``length``-frame video.

    Consecutive windows when ``consecutive`` or ``2*frame_range+1 == num`` (start uniform over every
    valid window: the official off-by-one that never picks the last window is not kept); otherwise a
    reference frame plus ``num-1`` distinct frames within +-``frame_range``, sorted (MinVIS style).
    Videos shorter than ``num`` use every frame plus sorted random repeats. With ``reverse`` the clip
    is reversed with probability 0.5.
    """
    if length <= 0 or num <= 0:
        raise ValueError(f"select_frames needs length > 0 and num > 0, got {length}, {num}")
    if length < num:
        extra = rng.integers(0, length, size=num - length)
        idx = sorted(list(range(length)) + [int(e) for e in extra])
    elif consecutive or 2 * frame_range + 1 == num:
        start = int(rng.integers(0, length - num + 1))
        idx = list(range(start, start + num))
    else:
        ref = int(rng.integers(0, length))
        lo, hi = max(0, ref - frame_range), min(length, ref + frame_range + 1)
        while hi - lo < num:  # widen the window until it holds enough frames
            lo, hi = max(0, lo - 1), min(length, hi + 1)
        pool = [i for i in range(lo, hi) if i != ref]
        picked = rng.choice(len(pool), size=num - 1, replace=False)
        idx = sorted([ref] + [pool[int(p)] for p in picked])
    if reverse and rng.random() < 0.5:
        idx = idx[::-1]
    return idx


def monotonic_angles(rng: np.random.Generator, num: int, max_degrees: float) -> list[float]:
    """``num`` rotation angles in [-max, max], sorted (reversed with p=0.5): simulated motion of pseudo-videos."""
    angles = sorted(float(a) for a in rng.uniform(-max_degrees, max_degrees, size=num))
    return angles[::-1] if rng.random() < 0.5 else angles
