"""Tracker training stage (reference §4, stage 2; PGT part 4): segmenter frozen, tracker trained like inference.

The sample holds INPUT.SAMPLING_NUM_CLIPS consecutive clips of INPUT.SAMPLING_FRAME_NUM frames. The frozen
segmenter runs once without gradients; the tracker runs clip after clip with its state (last output,
aligned queries, PGT memory) carried over and cut from the graph between clips (stop-gradient, as GenVIS).
Ground truth is assigned to slots once, at each identity's first appearance over the whole sample
(DVIS ``VideoHungarianMatcher_Consistent``), and kept for every frame, so the tracker must keep following
its object; DVIS++ denoising (MODEL.TRACKER.NOISE_MODE) corrupts the layer-0 identity during training.
The loss is the per-frame set loss (absent objects: empty mask, class kept) on every tracker layer, plus
the DVIS++ reference contrastive loss (MODEL.LOSS.REID_WEIGHT) and, with MODEL.TRACKER.RCP, the RCP
preservation loss (MODEL.LOSS.PRESERVE_WEIGHT) on confidently matched slots.

Schedules (read from ``model.train_progress``, which the trainer sets from the iteration, so a resumed run
follows them exactly): for the first MODEL.TRACKER.GUIDED_MATCHING of the iterations the first-appearance
assignment is computed on the frozen segmenter's predictions permuted into slot order by the tracker's
alignment indices (DVIS: a fresh tracker's own outputs are noise, so matching on them would teach slots
arbitrary objects); afterwards on the tracker's outputs. The denoising probability ramps linearly from 0 to
MODEL.TRACKER.NOISE_RATIO over the first MODEL.TRACKER.NOISE_WARMUP of the iterations.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from spvis.modeling.criterion import SetCriterion
from spvis.modeling.stages.frozen_cache import frozen_parts_in_eval, frozen_segment
from spvis.modeling.matcher import batch_dice_cost, batch_sigmoid_ce_cost
from spvis.modeling.pgt.reference_contrast import reference_contrastive_loss
from spvis.modeling.rcp import preservation_loss
from spvis.modeling.point_sampling import point_sample

SEGMENTER_PARTS = ("backbone", "sem_seg_head")  # frozen in the tracker and refiner stages
USED_QUERY_COST = 1e6  # DVIS excludes already assigned queries with this cost


@torch.no_grad()
def first_appearance_assignment(
    logits: Tensor,  # (T, Q, K+1) one clip's per-frame class logits
    masks: Tensor,  # (T, Q, h, w) mask logits
    target: dict,  # labels (N,), masks (N, T, H, W), present (N, T)
    *, class_weight: float, mask_weight: float, dice_weight: float, num_points: int,
) -> tuple[Tensor, Tensor]:
    """(slot indices, target indices): each identity matched in the first frame it appears in, frames in
    order, queries taken earlier excluded; the pairs then hold for every frame."""
    num_frames, num_queries = logits.shape[:2]
    present = target["present"]
    used = torch.zeros(num_queries, dtype=torch.bool)
    assigned = torch.zeros(present.shape[0], dtype=torch.bool)
    slots, ids = [], []
    for t in range(num_frames):
        new = torch.nonzero(present[:, t].cpu() & ~assigned).flatten()
        if new.numel() == 0:
            continue
        probs = logits[t].float().softmax(-1)  # (Q, K+1)
        cost_class = -probs[:, target["labels"][new]]  # (Q, n)
        coords = torch.rand(1, num_points, 2, device=masks.device)
        pred_points = point_sample(masks[t].float()[:, None], coords.expand(num_queries, -1, -1))[:, 0]  # (Q, P)
        tgt = target["masks"][new.to(masks.device), t].float()[:, None]  # (n, 1, H, W)
        tgt_points = point_sample(tgt, coords.expand(tgt.shape[0], -1, -1))[:, 0]  # (n, P)
        cost = (class_weight * cost_class + mask_weight * batch_sigmoid_ce_cost(pred_points, tgt_points)
                + dice_weight * batch_dice_cost(pred_points, tgt_points))
        cost = torch.nan_to_num(cost, nan=0.0).cpu()
        cost[used] = USED_QUERY_COST
        rows, cols = linear_sum_assignment(cost.numpy())
        for r, c in zip(rows.tolist(), cols.tolist()):
            used[r] = True
            assigned[new[c]] = True
            slots.append(r)
            ids.append(int(new[c]))
    return torch.as_tensor(slots, dtype=torch.int64), torch.as_tensor(ids, dtype=torch.int64)


@torch.no_grad()
def frozen_segmenter(model, images: Tensor, frames_per_clip: int) -> dict[str, Tensor]:
    """Segmenter in eval mode without gradients -> {embeds (B, T, Q, C), features (B, T, Cm, h, w),
    logits (B, T, Q, K+1), masks (B, T, Q, h, w)}."""
    with frozen_parts_in_eval(model, SEGMENTER_PARTS):
        seg = frozen_segment(model, images)
    b = seg["pred_embds"].shape[0] // frames_per_clip

    def per_clip(x: Tensor) -> Tensor:
        return x.reshape(b, frames_per_clip, *x.shape[1:])

    return {"embeds": per_clip(seg["pred_embds"]), "features": per_clip(seg["mask_features"]),
            "logits": per_clip(seg["pred_logits"]), "masks": per_clip(seg["pred_masks"])}


def in_slot_order(x: Tensor, indices: Tensor) -> Tensor:
    """Per-frame segmenter outputs x (B, T, Q, ...) gathered by the tracker's alignment indices (B, T, Q)."""
    index = indices.view(*indices.shape, *([1] * (x.dim() - 3))).expand(-1, -1, -1, *x.shape[3:])
    return torch.gather(x, 2, index.to(x.device))


def scheduled_fraction(progress: tuple[int, int], fraction: float) -> float:
    """Linear ramp 0 -> 1 over the first ``fraction`` of training (1 from the start when fraction is 0)."""
    iteration, max_iter = progress
    span = fraction * max(max_iter, 1)
    return 1.0 if span <= 0 else min(1.0, iteration / span)


def is_guided(progress: tuple[int, int], fraction: float) -> bool:
    """Whether iteration ``progress[0]`` of ``progress[1]`` is in the guided-matching part of training."""
    iteration, max_iter = progress
    return iteration < fraction * max_iter


def track_sample(tracker, embeds: Tensor, features: Tensor, clip_frames: int) -> list[dict]:
    """Run the tracker over consecutive clips of ``clip_frames``, state carried with stop-gradient.

    Returns one output dict per clip (``ReferringTracker.forward`` layout).
    """
    outputs, state = [], None
    for start in range(0, embeds.shape[1], clip_frames):
        out, state = tracker(embeds[:, start:start + clip_frames], features[:, start:start + clip_frames], state)
        outputs.append(out)
        state = state.detached()
    return outputs


def _per_frame(head: dict) -> dict:
    """(B, T, Q, K+1) logits and (B, Q, T, h, w) masks -> B*T one-frame clips for the criterion."""
    logits = head["pred_logits"].flatten(0, 1)  # (B*T, Q, K+1)
    masks = head["pred_masks"].transpose(1, 2).flatten(0, 1).unsqueeze(2)  # (B*T, Q, 1, h, w)
    return {"pred_logits": logits, "pred_masks": masks}


def _concat_clips(clips: list[dict]) -> dict:
    """Join per-clip tracker outputs on the time axis (logits dim 1, masks dim 2)."""
    def join(heads: list[dict]) -> dict:
        return {"pred_logits": torch.cat([h["pred_logits"] for h in heads], 1),
                "pred_masks": torch.cat([h["pred_masks"] for h in heads], 2)}
    result = join(clips)
    result["aux_outputs"] = [join([c["aux_outputs"][i] for c in clips]) for i in range(len(clips[0]["aux_outputs"]))]
    result["pred_references"] = [ref for c in clips for ref in c["pred_references"]]
    result["match_indices"] = torch.cat([c["match_indices"] for c in clips], 1)  # (B, T, Q)
    for key in ("rcp_compensated", "rcp_memory"):  # (B, T, Q, C) with RCP on
        if key in clips[0]:
            result[key] = torch.cat([c[key] for c in clips], 1)
    return result


def matched_presence(matched: list[tuple[Tensor, Tensor]], targets: list[dict], num_frames: int,
                     num_queries: int) -> Tensor:
    """bool (B, T, Q): slot assigned to an identity that is present in that frame."""
    valid = torch.zeros(len(targets), num_frames, num_queries, dtype=torch.bool)
    for b, ((slots, ids), target) in enumerate(zip(matched, targets)):
        valid[b][:, slots] = target["present"][ids].cpu().t()  # (T, n)
    return valid


def rcp_preservation(outputs: dict, matched: list[tuple[Tensor, Tensor]], targets: list[dict]) -> Tensor:
    """Causal RCP preservation loss: each frame's compensated query against the stable memory it saw."""
    compensated, memory = outputs["rcp_compensated"], outputs["rcp_memory"]  # (B, T, Q, C)
    b, t, q, c = compensated.shape
    valid = matched_presence(matched, targets, t, q).to(compensated.device)
    # one "frame" per (b, t) so each query is compared with the memory of its own frame
    return preservation_loss(compensated.reshape(b * t, 1, q, c), memory.reshape(b * t, q, c),
                             valid.reshape(b * t, 1, q))


def tracker_criterion(model) -> SetCriterion:
    """The set criterion sized for the tracker's aux layers, cached on the model (not a child: no keys)."""
    criterion = getattr(model, "_tracker_criterion", None)
    if criterion is None:
        criterion = SetCriterion.from_config(model.cfg, num_aux=model.cfg.MODEL.TRACKER.DECODER_LAYERS - 1)
        object.__setattr__(model, "_tracker_criterion", criterion)
    return criterion


def compute_losses(model, images: Tensor, targets: list[dict], clip_len: int) -> dict[str, Tensor]:
    """Weighted tracker losses. images (B*T, 3, Hp, Wp) normalised; targets per sample {labels (N,),
    ids (N,), masks (N, T, Hp, Wp) float, present (N, T) bool}; T = clip_len = frames per sample."""
    cfg = model.cfg
    clip_frames = cfg.INPUT.SAMPLING_FRAME_NUM if clip_len % cfg.INPUT.SAMPLING_FRAME_NUM == 0 else clip_len
    progress = getattr(model, "train_progress", (0, 1))
    tcfg = cfg.MODEL.TRACKER
    model.tracker.noiser.ratio = float(tcfg.NOISE_RATIO) * scheduled_fraction(progress, float(tcfg.NOISE_WARMUP))
    seg = frozen_segmenter(model, images, clip_len)
    outputs = _concat_clips(track_sample(model.tracker, seg["embeds"], seg["features"], clip_frames))
    if is_guided(progress, float(tcfg.GUIDED_MATCHING)):
        match_logits = in_slot_order(seg["logits"], outputs["match_indices"])  # (B, T, Q, K+1)
        match_masks = in_slot_order(seg["masks"], outputs["match_indices"])  # (B, T, Q, h, w)
    else:
        match_logits = outputs["pred_logits"].detach()
        match_masks = outputs["pred_masks"].detach().transpose(1, 2)
    loss_cfg = cfg.MODEL.LOSS
    criterion = tracker_criterion(model)
    frame_targets, frame_indices, matched_slots, matched = [], [], [], []
    for b, target in enumerate(targets):
        indices = first_appearance_assignment(
            match_logits[b], match_masks[b], target,
            class_weight=loss_cfg.CLASS_WEIGHT, mask_weight=loss_cfg.MASK_WEIGHT, dice_weight=loss_cfg.DICE_WEIGHT,
            num_points=loss_cfg.TRAIN_NUM_POINTS,
        )
        matched_slots.append(indices[0])
        matched.append(indices)
        for t in range(clip_len):
            frame_targets.append({"labels": target["labels"], "masks": target["masks"][:, t:t + 1]})
            frame_indices.append(indices)
    per_frame = _per_frame(outputs)
    per_frame["aux_outputs"] = [_per_frame(aux) for aux in outputs["aux_outputs"]]
    losses = criterion.weighted(criterion(per_frame, frame_targets, indices=frame_indices))
    if loss_cfg.REID_WEIGHT > 0:
        reid = reference_contrastive_loss(outputs["pred_references"], matched_slots)
        if reid is not None:
            losses["loss_reid"] = loss_cfg.REID_WEIGHT * reid
    if "rcp_compensated" in outputs and loss_cfg.PRESERVE_WEIGHT > 0:
        losses["loss_preserve"] = loss_cfg.PRESERVE_WEIGHT * rcp_preservation(outputs, matched, targets)
    return losses
