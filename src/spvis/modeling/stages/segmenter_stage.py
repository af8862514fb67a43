"""Stage 1 (MinVIS style): per-frame training of the segmenter; every frame is an image with its own matching."""

from __future__ import annotations

from torch import Tensor

from spvis.modeling.criterion import SetCriterion


def frame_targets(targets: list[dict], clip_len: int) -> list[dict]:
    """Per-clip targets (masks (N, T, H, W), present (N, T)) -> per-frame targets of the instances present."""
    frames = []
    for target in targets:
        for t in range(clip_len):
            keep = target["present"][:, t]
            frames.append({"labels": target["labels"][keep], "masks": target["masks"][keep, t:t + 1]})
    return frames


def _as_video(out: dict) -> dict:
    """Frame predictions (N, Q, h, w) -> one-frame clips (N, Q, 1, h, w) as the criterion expects."""
    return {"pred_logits": out["pred_logits"], "pred_masks": out["pred_masks"].unsqueeze(2)}


def compute_losses(model, images: Tensor, targets: list[dict], clip_len: int) -> dict[str, Tensor]:
    """Weighted segmenter losses for normalised, padded images (B*T, 3, Hp, Wp) and per-clip targets."""
    criterion = model.stage_cache.get("segmenter_criterion")
    if criterion is None:  # built once per model; kept out of the module tree so it adds no checkpoint keys
        criterion = model.stage_cache["segmenter_criterion"] = SetCriterion.from_config(model.cfg)
    out = model.segment(images)
    outputs = _as_video(out)
    outputs["aux_outputs"] = [_as_video(aux) for aux in out["aux_outputs"]]
    losses = criterion(outputs, frame_targets(targets, clip_len))
    return criterion.weighted(losses)
