"""Refiner training stage (reference §4, stage 3): segmenter and tracker frozen, video-level set losses.

Clips are long (INPUT.SAMPLING_FRAME_NUM, e.g. 21) and reversed with probability 0.5 by the data side
(INPUT.REVERSE_AGU). The frozen segmenter and tracker run in eval mode without gradients; the refiner's
video-level predictions (class pooled over T, masks (B, Q, T, h, w)) are matched once per video and
supervised on every layer by the shared criterion (each video as one tall mask, as the official code, with
TRAIN_NUM_POINTS x T points: ``RefinerCriterion`` keeps one SetCriterion per clip length). With RCP on,
the preservation loss pulls the compensated queries of matched, present objects towards their
(stop-gradient) stable embedding; the track contrastive loss separates matched objects across frames. SIM
is applied per frame before the refiner, guided by the tracker's mask of that frame.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from spvis.modeling.criterion import SetCriterion
from spvis.modeling.rcp import contrastive_loss, preservation_loss
from spvis.modeling.stages.frozen_cache import (FrozenSegmenterCache, build_frozen_cache, frozen_parts_in_eval,
                                                frozen_segment)
from spvis.modeling.stages.presence import matched_presence
from spvis.modeling.stages.schedule import is_guided
from spvis.modeling.stages.tracker_stage import SEGMENTER_PARTS


@torch.no_grad()
def frozen_tracking(model: nn.Module, images: Tensor, clip_len: int,
                    cache: FrozenSegmenterCache | None = None) -> dict:
    """Segmenter (through ``cache`` when given) + tracker in eval mode without gradients on (B*T, 3, Hp, Wp) images.

    Returns ``embeds`` (B, T, Q, C) tracker outputs, ``masks`` (B, T, Q, h, w) tracker mask logits,
    ``memory`` (B, T, Q, C) the frame memory and ``features`` (B, T, Cm, h, w) the mask features.
    """
    with frozen_parts_in_eval(model, (*SEGMENTER_PARTS, "tracker")):
        seg = frozen_segment(model, images, cache)
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


def video_level(outputs: dict) -> dict:
    """(B, Q, T, h, w) masks -> (B, Q, 1, T*h, w): the official refiner matches and supervises each video as
    one tall mask (frames stacked along the height), with TRAIN_NUM_POINTS x T points."""
    def flat(head: dict) -> dict:
        masks = head["pred_masks"]
        return {"pred_logits": head["pred_logits"], "pred_masks": masks.flatten(2, 3).unsqueeze(2)}

    result = flat(outputs)
    result["aux_outputs"] = [flat(aux) for aux in outputs["aux_outputs"]]
    return result


class RefinerCriterion:
    """Stage 3 loss: video-level set loss on every refiner layer (+ RCP losses); owns one SetCriterion per clip
    length (points x T), the guided-matching schedule and the frozen-segmenter cache."""

    def __init__(self, make_set_criterion: Callable[..., SetCriterion], *, points_per_frame: int,
                 guided_matching: float, frozen_cache: FrozenSegmenterCache | None = None):
        self._make_set_criterion = make_set_criterion  # (num_points=...) -> SetCriterion
        self.points_per_frame = int(points_per_frame)
        self.guided_matching = float(guided_matching)
        self.frozen_cache = frozen_cache
        self._criteria: dict[int, SetCriterion] = {}

    @classmethod
    def from_config(cls, cfg) -> "RefinerCriterion":
        """MODEL.LOSS weights, aux sets of MODEL.REFINER.DECODER_LAYERS, MODEL.REFINER.GUIDED_MATCHING."""
        make = partial(SetCriterion.from_config, cfg.clone(), num_aux=cfg.MODEL.REFINER.DECODER_LAYERS - 1)
        return cls(make, points_per_frame=cfg.MODEL.LOSS.TRAIN_NUM_POINTS,
                   guided_matching=cfg.MODEL.REFINER.GUIDED_MATCHING, frozen_cache=build_frozen_cache(cfg))

    def set_criterion(self, clip_len: int) -> SetCriterion:
        """The set criterion for ``clip_len``-frame videos: TRAIN_NUM_POINTS x clip_len points (losses, matching)."""
        if clip_len not in self._criteria:
            self._criteria[clip_len] = self._make_set_criterion(num_points=self.points_per_frame * clip_len)
        return self._criteria[clip_len]

    def guided(self, iteration: int, max_iter: int) -> bool:
        """Whether ``iteration`` matches every layer on the frozen tracker's predictions (else each on its own)."""
        return is_guided(iteration, max_iter, self.guided_matching)

    def __call__(self, model: nn.Module, images: Tensor, targets: list[dict], clip_len: int, iteration: int,
                 max_iter: int) -> dict[str, Tensor]:
        """Weighted refiner-stage losses. images (B*T, 3, Hp, Wp) normalised; targets per clip
        {labels (N,), ids (N,), masks (N, T, Hp, Wp) float, present (N, T) bool} (docs/INTERFACES.md).

        Every layer is matched on its own (official) once training is past MODEL.REFINER.GUIDED_MATCHING of
        MAX_ITER; before that every layer uses one matching computed on the frozen tracker's video-level
        predictions (logits averaged over T, its masks), as DVIS guides the refiner by the tracker. RCP losses
        use the last layer's matching.
        """
        tracked = frozen_tracking(model, images, clip_len, self.frozen_cache)
        outputs = refine_clip(model.refiner, tracked)
        flat = video_level(outputs)
        flat_targets = [{"labels": t["labels"], "masks": t["masks"].flatten(1, 2).unsqueeze(1)} for t in targets]
        criterion = self.set_criterion(clip_len)
        guided = None
        if self.guided(iteration, max_iter):
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
