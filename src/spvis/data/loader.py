"""Training data loader: an endless, resumable index stream over a clip dataset, batched as lists of clips.

``ClipDataset`` items depend only on (seed, index), so a sampler that hands out ``pass * len + perm[i]``
gives fresh augmentation on every pass, identical results for any number of workers, and an exact resume:
skipping the first ``start`` indices replays the stream a restarted run would have seen. The order is the
trainer's (``spvis.data.sample_order.EpochShuffle``): one seed rule for every sampler.
"""

from __future__ import annotations

from itertools import count
from typing import Any, Iterator

import torch

from spvis.data.clip_dataset import collate_clips
from spvis.data.sample_order import EpochShuffle
from spvis.errors import SpvisError


class InfiniteClipSampler(torch.utils.data.Sampler):
    """Yields dataset indices forever: global sample ``k`` is ``EpochShuffle(size, seed)(k)``.

    ``rank``/``world_size`` split the stream between processes (every ``world_size``-th sample);
    ``start`` skips the first ``start`` samples of this process (resume after ``start`` clips).
    """

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True, start: int = 0, rank: int = 0,
                 world_size: int = 1):
        if size <= 0:
            raise SpvisError("the training dataset is empty: no clips to sample")
        if not 0 <= rank < world_size:
            raise SpvisError(f"sampler rank must be in [0, {world_size}), got {rank}")
        self.order = EpochShuffle(size, seed, shuffle=shuffle)
        self.start, self.rank, self.world_size = int(start), int(rank), int(world_size)

    def __iter__(self) -> Iterator[int]:
        for k in count(self.start):  # this process's k-th sample is global sample k * world_size + rank
            yield self.order(k * self.world_size + self.rank)


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
