"""Per-frame maximum-score assignment: scipy's Hungarian solver, short-cut where the answer is forced.

Most frames hold one GT and one or a few predictions of a class. When the score matrix has one row or
one column, the optimum is its maximum; if that maximum is unique (or <= 0, where every metric drops
the pair anyway) it is returned without the solver's ~20 us of Python overhead. Otherwise, and for
ties, ``linear_sum_assignment`` decides, so the pairs equal TrackEval's exactly.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def max_score_assignment(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a maximum-score one-to-one assignment of a (n, m) score matrix."""
    n, m = score.shape
    if n == 1 or m == 1:
        flat = score.ravel()
        best = int(np.argmax(flat))
        top = flat[best]
        if top <= 0 or np.count_nonzero(flat == top) == 1:
            if n == 1:
                return np.zeros(1, dtype=np.int64), np.array([best], dtype=np.int64)
            return np.array([best], dtype=np.int64), np.zeros(1, dtype=np.int64)
    return linear_sum_assignment(-score)
