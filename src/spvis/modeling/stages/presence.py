"""Which slots hold a matched object that is visible in a frame: the mask of the RCP / contrastive losses."""

from __future__ import annotations

import torch
from torch import Tensor


def matched_presence(indices: list[tuple[Tensor, Tensor]], targets: list[dict], num_frames: int,
                     num_queries: int) -> Tensor:
    """bool (B, T, Q): slot q of clip b is matched (``indices[b]`` = (slots, target ids)) to an object
    present in frame t (``targets[b]["present"]`` (N, T))."""
    valid = torch.zeros(len(targets), num_frames, num_queries, dtype=torch.bool)
    for b, ((slots, ids), target) in enumerate(zip(indices, targets)):
        present = target["present"][ids.to(target["present"].device)].cpu()  # (M, T)
        valid[b][:, slots.cpu()] = present.t()
    return valid
