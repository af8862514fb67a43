"""Segmenter producer for the reference-bundle check: the official segmenter tensors from our modules.

Returns the bundle's segmenter outputs (``seg_logits``, ``seg_masks``, ``seg_embds``), the debugging
intermediates (``chanmean_*``, ``frame0_*``) and ``mask_features`` for the tracker/refiner producers.
"""

from __future__ import annotations

import numpy as np
import torch

from spvis.modeling.preprocessing import frames_to_tensor


def _chanmean(x: torch.Tensor) -> np.ndarray:
    return x.float().mean(dim=(-2, -1)).cpu().numpy()  # (T, C)


@torch.no_grad()
def produce(model, frames: np.ndarray, produced: dict | None = None, *, window_size: int = 3) -> dict[str, np.ndarray]:
    """frames: uint8 (T, H, W, 3) RGB as the model saw them -> dict of numpy arrays (bundle names).

    The segmenter runs in windows of ``window_size`` frames like the official test loop (its math is
    per frame, so windowing only bounds memory).
    """
    was_training = model.training
    model.eval()
    try:
        images = model.preprocess(frames_to_tensor(frames).to(model.device))  # (T, 3, Hp, Wp)
        parts: dict[str, list[torch.Tensor]] = {}
        for start in range(0, images.shape[0], window_size):
            window = images[start:start + window_size]
            features = model.backbone(window)
            out = model.sem_seg_head(features)
            pieces = {
                "seg_logits": out["pred_logits"], "seg_masks": out["pred_masks"], "seg_embds": out["pred_embds"],
                "mask_features": out["mask_features"],
            }
            for name in ("res2", "res3", "res4", "res5"):
                if name in features:
                    pieces[f"backbone_{name}"] = features[name]
            for index, level in enumerate(out["multi_scale_features"]):
                pieces[f"pixdec_multi_scale_{index}"] = level
            for key, value in pieces.items():
                parts.setdefault(key, []).append(value.float().cpu())
    finally:
        model.train(was_training)
    full = {key: torch.cat(values, 0) for key, values in parts.items()}
    result = {key: full[key].numpy() for key in ("seg_logits", "seg_masks", "seg_embds", "mask_features")}
    for key, value in full.items():
        if key.startswith(("backbone_", "pixdec_")):
            result[f"chanmean_{key}"] = _chanmean(value)
            result[f"frame0_{key}"] = value[0].numpy()
    result["chanmean_pixdec_mask_features"] = _chanmean(full["mask_features"])
    return result
