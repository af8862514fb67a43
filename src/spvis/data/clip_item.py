"""The training item every clip dataset returns, built in one place so real and generated clips agree.

A clip item is a dict: ``frames`` uint8 (T, 3, H, W), ``masks`` bool (T, N, H, W), ``labels`` and ``ids`` int64
(N,), ``present`` bool (T, N), ``video_id`` and ``frame_indices``. Dataset clips (``spvis.data.clip_dataset``)
and generated ones (``spvis.data.synth_stream``) both pack theirs with ``pack_clip``.
"""

from __future__ import annotations

import numpy as np
import torch


def pack_clip(images: list[np.ndarray], masks: list[np.ndarray], labels: list[int], ids: list[int], video_id: int,
          frame_indices: list[int]) -> dict:
    """Stack per-frame arrays into the item dict; drop identities not visible in any frame after augmentation."""
    frames = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (T, 3, H, W) uint8
    m = torch.from_numpy(np.stack(masks))  # (T, N, H, W) bool
    present = m.flatten(2).any(-1) if m.shape[1] else torch.zeros(m.shape[:2], dtype=torch.bool)  # (T, N)
    keep = present.any(0)  # (N,)
    return {
        "frames": frames,
        "masks": m[:, keep].contiguous(),
        "labels": torch.tensor(labels, dtype=torch.int64)[keep],
        "ids": torch.tensor(ids, dtype=torch.int64)[keep],
        "present": present[:, keep].contiguous(),
        "video_id": int(video_id),
        "frame_indices": frame_indices,
    }
