"""Training data loader: an endless, resumable index stream over a clip dataset, batched as lists of clips.

``ClipDataset`` items depend only on (seed, index), so a sampler that hands out ``pass * len + perm[i]``
gives fresh augmentation on every pass, identical results for any number of workers, and an exact resume:
skipping the first ``start`` indices replays the stream a restarted run would have seen.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from spvis.data.clip_dataset import collate_clips
from spvis.errors import SpvisError


class InfiniteClipSampler(torch.utils.data.Sampler):
    """Yields dataset indices forever: one seeded permutation per pass, offset by ``pass * size``.

    ``rank``/``world_size`` split the stream between processes (every ``world_size``-th index);
    ``start`` skips the first ``start`` indices of this process (resume after ``start`` clips).
    """

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True, start: int = 0, rank: int = 0,
                 world_size: int = 1):
        if size <= 0:
            raise SpvisError("the training dataset is empty: no clips to sample")
        if not 0 <= rank < world_size:
            raise SpvisError(f"sampler rank must be in [0, {world_size}), got {rank}")
        self.size, self.seed, self.shuffle = int(size), int(seed), bool(shuffle)
        self.start, self.rank, self.world_size = int(start), int(rank), int(world_size)

    def _global_stream(self) -> Iterator[int]:
        epoch = 0
        while True:
            order = (np.random.default_rng([self.seed, epoch]).permutation(self.size) if self.shuffle
                     else np.arange(self.size))
            base = epoch * self.size
            for i in order:
                yield base + int(i)
            epoch += 1

    def __iter__(self) -> Iterator[int]:
        skip = self.start * self.world_size + self.rank  # position of this process's first index
        for pos, index in enumerate(self._global_stream()):
            if pos >= skip and (pos - self.rank) % self.world_size == 0:
                yield index


def build_train_loader(cfg: Any, *, dataset: torch.utils.data.Dataset | None = None, start_clip: int = 0,
                       rank: int = 0, world_size: int = 1) -> torch.utils.data.DataLoader:
    """Endless loader of ``cfg.SOLVER.CLIPS_PER_DEVICE`` clips per batch (a list of clip dicts).

    ``dataset`` defaults to ``build_clip_dataset(cfg, cfg.DATASETS.TRAIN)``; ``start_clip`` = clips this
    process already consumed (resume). Workers: ``cfg.DATALOADER.NUM_WORKERS``.
    """
    if dataset is None:
        from spvis.data.clip_dataset import build_clip_dataset

        dataset = build_clip_dataset(cfg, list(cfg.DATASETS.TRAIN), is_train=True)
    workers = int(cfg.DATALOADER.NUM_WORKERS)
    sampler = InfiniteClipSampler(len(dataset), seed=int(cfg.SEED), start=start_clip, rank=rank,
                                  world_size=world_size)
    return torch.utils.data.DataLoader(
        dataset, batch_size=max(1, int(cfg.SOLVER.CLIPS_PER_DEVICE)), sampler=sampler, num_workers=workers,
        collate_fn=collate_clips, persistent_workers=workers > 0, prefetch_factor=2 if workers > 0 else None)
