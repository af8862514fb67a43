"""Refiner training stage (reference §4, stage 3): segmenter and tracker frozen, video-level set losses.

Clips are long (INPUT.SAMPLING_FRAME_NUM, e.g. 21) and reversed with probability 0.5 by the data side
(INPUT.REVERSE_AGU). The frozen segmenter and tracker run in eval mode without gradients; the refiner's
video-level predictions (class pooled over T, masks (B, Q, T, h, w)) are matched once per video and
supervised on every layer by the shared criterion (each video as one tall mask, as the official code). With RCP on, the preservation loss pulls the
compensated queries of matched, present objects towards their (stop-gradient) stable embedding; the
track contrastive loss separates matched objects across frames. SIM is applied per frame before the
refiner, guided by the tracker's mask of that frame.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spvis.modeling.criterion import SetCriterion
from spvis.modeling.stages.frozen_cache import frozen_parts_in_eval, frozen_segment
from spvis.modeling.rcp import contrastive_loss, preservation_loss
from spvis.modeling.stages.tracker_stage import SEGMENTER_PARTS, is_guided


@torch.no_grad()
def frozen_tracking(model, images: Tensor, clip_len: int) -> dict:
    """Segmenter + tracker in eval mode without gradients on (B*T, 3, Hp, Wp) images.

    Returns ``embeds`` (B, T, Q, C) tracker outputs, ``masks`` (B, T, Q, h, w) tracker mask logits,
    ``memory`` (B, T, Q, C) the frame memory and ``features`` (B, T, Cm, h, w) the mask features.
    """
    with frozen_parts_in_eval(model, (*SEGMENTER_PARTS, "tracker")):
        seg = frozen_segment(model, images)
        n, q, c = seg["pred_embds"].shape
        b = n // clip_len
        seg_embeds = seg["pred_embds"].reshape(b, clip_len, q, c)
        features = seg["mask_features"].reshape(b, clip_len, *seg["mask_features"].shape[1:])
        tracked, _ = model.tracker(seg_embeds, features)
        memory = model.tracker.frame_forward(seg_embeds)
    return {"embeds": tracked["pred_embds"], "masks": tracked["pred_masks"].transpose(1, 2),
            "logits": tracked["pred_logits"], "memory": memory, "features": features}


def refine_clip(refiner, tracked: dict) -> dict:
    """Refiner outputs with masks for every layer in the criterion layout (pred_masks (B, Q, T, h, w))."""
    embeds = tracked["embeds"]
    if refiner.sim is not None:
        embeds = torch.stack([refiner.ground_frame(embeds[:, t], tracked["features"][:, t], tracked["masks"][:, t])
                              for t in range(embeds.shape[1])], dim=1)
    out = refiner(embeds, tracked["memory"])

    def with_masks(head: dict) -> dict:
        masks = refiner.predict_masks(head["pred_embds"], tracked["features"])  # (B, T, Q, h, w)
        return {"pred_logits": head["pred_logits"], "pred_masks": masks.transpose(1, 2)}

    result = with_masks(out)
    result["aux_outputs"] = [with_masks(aux) for aux in out["aux_outputs"]]
    result["pred_embds"] = out["pred_embds"]
    for key in ("rcp_compensated", "rcp_memory"):
        if key in out:
            result[key] = out[key]
    return result


def matched_presence(indices: list[tuple[Tensor, Tensor]], targets: list[dict], num_frames: int,
                     num_queries: int) -> Tensor:
    """bool (B, T, Q): slot q of clip b is matched to an object that is present in frame t."""
    valid = torch.zeros(len(targets), num_frames, num_queries, dtype=torch.bool)
    for b, ((pred_idx, tgt_idx), target) in enumerate(zip(indices, targets)):
        present = target["present"][tgt_idx.cpu()].cpu()  # (M, T)
        valid[b][:, pred_idx.cpu()] = present.t()
    return valid


def video_level(outputs: dict) -> dict:
    """(B, Q, T, h, w) masks -> (B, Q, 1, T*h, w): the official refiner matches and supervises each video as
    one tall mask (frames stacked along the height), with TRAIN_NUM_POINTS x T points."""
    def flat(head: dict) -> dict:
        masks = head["pred_masks"]
        return {"pred_logits": head["pred_logits"], "pred_masks": masks.flatten(2, 3).unsqueeze(2)}

    result = flat(outputs)
    result["aux_outputs"] = [flat(aux) for aux in outputs["aux_outputs"]]
    return result


def refiner_criterion(model, clip_len: int) -> SetCriterion:
    """Set criterion for ``clip_len``-frame videos (points x T, aux = refiner layers - 1), cached on the model
    without becoming a child module (no checkpoint keys)."""
    cache = getattr(model, "_refiner_criteria", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_refiner_criteria", cache)
    if clip_len not in cache:
        cfg = model.cfg
        criterion = SetCriterion.from_config(cfg, num_aux=cfg.MODEL.REFINER.DECODER_LAYERS - 1,
                                             num_points=cfg.MODEL.LOSS.TRAIN_NUM_POINTS * clip_len)
        cache[clip_len] = criterion
    return cache[clip_len]


def compute_losses(model, images: Tensor, targets: list[dict], clip_len: int) -> dict[str, Tensor]:
    """Weighted refiner-stage losses. images (B*T, 3, Hp, Wp) normalised; targets per clip
    {labels (N,), ids (N,), masks (N, T, Hp, Wp) float, present (N, T) bool} (docs/INTERFACES.md).

    Every layer is matched on its own (official) once training is past MODEL.REFINER.GUIDED_MATCHING of
    MAX_ITER; before that every layer uses one matching computed on the frozen tracker's video-level
    predictions (logits averaged over T, its masks), as DVIS guides the refiner by the tracker. RCP losses use
    the last layer's matching.
    """
    tracked = frozen_tracking(model, images, clip_len)
    outputs = refine_clip(model.refiner, tracked)
    flat = video_level(outputs)
    flat_targets = [{"labels": t["labels"], "masks": t["masks"].flatten(1, 2).unsqueeze(1)} for t in targets]
    criterion = refiner_criterion(model, clip_len)
    guided = None
    if is_guided(getattr(model, "train_progress", (0, 1)), float(model.cfg.MODEL.REFINER.GUIDED_MATCHING)):
        tracker_video = {"pred_logits": tracked["logits"].mean(1),  # (B, Q, K+1) averaged over T
                         "pred_masks": tracked["masks"].transpose(1, 2).flatten(2, 3).unsqueeze(2)}
        guided = criterion.matcher(tracker_video, flat_targets)
    losses = criterion.weighted(criterion(flat, flat_targets, indices=guided))
    rcp = model.refiner.rcp
    if rcp is not None:
        indices = guided if guided is not None else criterion.matcher(flat, flat_targets)
        b, t, q, _ = outputs["pred_embds"].shape
        valid = matched_presence(indices, targets, t, q).to(outputs["pred_embds"].device)
        if rcp.preserve_weight > 0:
            losses["loss_preserve"] = rcp.preserve_weight * preservation_loss(
                outputs["rcp_compensated"], outputs["rcp_memory"], valid)
        if rcp.contrast_weight > 0:
            losses["loss_contrast"] = rcp.contrast_weight * contrastive_loss(outputs["pred_embds"], valid)
    return losses
