"""Training schedules of the stage criteria, as pure functions of (iteration, max_iter).

The trainer passes the iteration to every step, so a resumed run follows the same schedule; nothing is
kept on the model.
"""

from __future__ import annotations


def ramp(iteration: int, max_iter: int, fraction: float) -> float:
    """Linear 0 -> 1 over the first ``fraction`` of ``max_iter`` iterations (1 from the start when fraction is 0)."""
    span = fraction * max(max_iter, 1)
    return 1.0 if span <= 0 else min(1.0, iteration / span)


def is_guided(iteration: int, max_iter: int, fraction: float) -> bool:
    """Whether ``iteration`` lies in the first ``fraction`` of training (the guided-matching part)."""
    return iteration < fraction * max_iter
