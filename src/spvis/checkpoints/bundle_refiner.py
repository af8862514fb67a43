"""Refiner producer for the reference-bundle check: the official DVIS_offline outputs from our modules.

Given the tracker's instance embeddings, the frame memory and the segmenter's mask features (made by
the segmenter and tracker producers), this runs ``model.refiner`` and the offline VIS post-processing
and returns arrays named and shaped exactly as the bundle's ``outputs.npz`` (see its README).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from spvis.modeling.postprocess import masks_to_original, vis_topk
from spvis.modeling.preprocessing import padded_size

REFINER_KEYS = (
    "ref_logits", "ref_masks", "ref_embds", "final_offline_cls_in", "final_offline_aux_cls_in",
    "final_offline_scores", "final_offline_labels", "final_offline_ids", "final_offline_masks",
)


def _tensor(value) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))


@torch.no_grad()
def produce(model, frames: np.ndarray, produced: Mapping[str, object], *, max_num: int = 10,
            size_divisibility: int = 32, window_size: int = 3) -> dict[str, np.ndarray]:
    """Refiner + offline post-processing outputs of one video.

    ``frames``: uint8 (T, H, W, 3) exactly as the model saw them (no resize); ``produced`` holds
    ``trk_embds`` (T, Q, C), ``trk_frame_embds`` (T, Q, C), ``trk_logits`` (T, Q, K+1) and
    ``mask_features`` (T, Cm, h, w). The mask head runs in windows of ``window_size`` frames (official).
    """
    refiner = model.refiner
    device = next(refiner.parameters()).device
    instance = _tensor(produced["trk_embds"]).float().to(device).unsqueeze(0)  # (1, T, Q, C)
    memory = _tensor(produced["trk_frame_embds"]).float().to(device).unsqueeze(0)
    features = _tensor(produced["mask_features"]).float().to(device)  # (T, Cm, h, w)
    tracker_logits = _tensor(produced["trk_logits"]).float().to(device)  # (T, Q, K+1)
    out = refiner(instance, memory)
    embeds = out["pred_embds"]  # (1, T, Q, C)
    num_frames = embeds.shape[1]
    masks = torch.cat([refiner.predict_masks(embeds[:, s:s + window_size], features[s:s + window_size].unsqueeze(0))
                       for s in range(0, num_frames, window_size)], dim=1)[0]  # (T, Q, h, w)
    cls_in = out["pred_logits"][0]  # (Q, K+1): the official code averages T identical rows
    aux_cls_in = tracker_logits.mean(dim=0)
    scores, labels, ids = vis_topk(cls_in, max_num, aux_logits=aux_cls_in)
    height, width = frames.shape[1:3]
    padded = padded_size(height, width, size_divisibility)
    final_masks = masks_to_original(masks[:, ids].transpose(0, 1), padded, (height, width), (height, width))
    return {
        "ref_logits": cls_in.cpu().numpy(),
        "ref_masks": masks.cpu().numpy(),
        "ref_embds": embeds[0].cpu().numpy(),
        "final_offline_cls_in": cls_in.cpu().numpy(),
        "final_offline_aux_cls_in": aux_cls_in.cpu().numpy(),
        "final_offline_scores": scores.cpu().numpy(),
        "final_offline_labels": labels.cpu().numpy(),
        "final_offline_ids": ids.cpu().numpy(),
        "final_offline_masks": final_masks.to(torch.uint8).cpu().numpy(),
    }
