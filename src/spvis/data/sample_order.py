"""The one training sample order: global sample counter -> dataset index, a seeded permutation per pass.

Both samplers use it (the trainer's ``PlannedSampler`` and ``loader.InfiniteClipSampler``), so a run's data
order is a pure function of (seed, sample counter): it does not depend on workers, processes or resumes.
"""

from __future__ import annotations

import numpy as np

from spvis.errors import SpvisError

# Third word of the permutation seed ([seed, epoch, SEED_SALT]); changing it changes every run's data order.
SEED_SALT = 104729


class EpochShuffle:
    """Global sample counter -> dataset index: a fresh permutation per pass over the data, seeded.

    The returned index is ``epoch * n + position``; ClipDataset wraps it modulo n and draws its augmentation
    from the full index, so each pass sees new clips of the same videos. ``shuffle=False`` keeps the dataset
    order (the index is the counter itself).
    """

    def __init__(self, size: int, seed: int, *, shuffle: bool = True):
        if size < 1:
            raise SpvisError("the training dataset is empty")
        self.size, self.seed, self.shuffle = int(size), int(seed), bool(shuffle)
        self._epoch, self._perm = -1, np.arange(0)

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of pass ``epoch`` (positions 0 .. n-1)."""
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, int(epoch), SEED_SALT]).permutation(self.size)

    def __call__(self, sample: int) -> int:
        epoch, position = divmod(int(sample), self.size)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, self.permutation(epoch)
        return epoch * self.size + int(self._perm[position])
