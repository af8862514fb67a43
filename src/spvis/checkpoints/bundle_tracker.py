"""Tracker producer for the reference-bundle check: the official DVIS_online tracker outputs from our modules.

Given the segmenter's per-frame queries and mask features (made by the segmenter producer), this runs
``model.tracker`` frame by frame, ``tracker.frame_forward`` and the online VIS post-processing, and returns
arrays named and shaped exactly as the bundle's ``outputs.npz`` (see its README).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from spvis.modeling.postprocess import masks_to_original, vis_topk
from spvis.modeling.preprocessing import padded_size

TRACKER_KEYS = (
    "trk_logits", "trk_masks", "trk_embds", "trk_match_indices", "trk_frame_embds", "final_online_cls_in",
    "final_online_scores", "final_online_labels", "final_online_ids", "final_online_masks",
)


def _tensor(value) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))


@torch.no_grad()
def produce(model, frames: np.ndarray, produced: Mapping[str, object], *, max_num: int = 10,
            size_divisibility: int = 32) -> dict[str, np.ndarray]:
    """Tracker + online post-processing outputs of one video.

    ``frames``: uint8 (T, H, W, 3) exactly as the model saw them (no resize); ``produced`` holds
    ``seg_embds`` (T, Q, C) and ``mask_features`` (T, Cm, h, w).
    """
    tracker = model.tracker
    was_training = tracker.training
    tracker.eval()
    try:
        device = next(tracker.parameters()).device
        embeds = _tensor(produced["seg_embds"]).float().to(device)  # (T, Q, C)
        features = _tensor(produced["mask_features"]).float().to(device)  # (T, Cm, h, w)
        out, _ = tracker(embeds.unsqueeze(0), features.unsqueeze(0))
        frame_memory = tracker.frame_forward(embeds.unsqueeze(0))[0]  # (T, Q, C)
    finally:
        tracker.train(was_training)
    logits = out["pred_logits"][0]  # (T, Q, K+1)
    masks = out["pred_masks"][0].transpose(0, 1)  # (T, Q, h, w)
    cls_in = logits.mean(dim=0)
    scores, labels, ids = vis_topk(cls_in, max_num)
    height, width = frames.shape[1:3]
    padded = padded_size(height, width, size_divisibility)
    final_masks = masks_to_original(masks[:, ids].transpose(0, 1), padded, (height, width), (height, width))
    return {
        "trk_logits": logits.cpu().numpy(),
        "trk_masks": masks.cpu().numpy(),
        "trk_embds": out["pred_embds"][0].cpu().numpy(),
        "trk_match_indices": out["match_indices"][0].cpu().numpy().astype(np.int64),
        "trk_frame_embds": frame_memory.cpu().numpy(),
        "final_online_cls_in": cls_in.cpu().numpy(),
        "final_online_scores": scores.cpu().numpy(),
        "final_online_labels": labels.cpu().numpy(),
        "final_online_ids": ids.cpu().numpy(),
        "final_online_masks": final_masks.to(torch.uint8).cpu().numpy(),
    }
