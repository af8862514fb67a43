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

Schedules (functions of the iteration the trainer passes in, so a resumed run follows them exactly): for the
first MODEL.TRACKER.GUIDED_MATCHING of the iterations the first-appearance assignment is computed on the
frozen segmenter's predictions permuted into slot order by the tracker's alignment indices (DVIS: a fresh
tracker's own outputs are noise, so matching on them would teach slots arbitrary objects); afterwards on the
tracker's outputs. The denoising probability ramps linearly from 0 to MODEL.TRACKER.NOISE_RATIO over the
first MODEL.TRACKER.NOISE_WARMUP of the iterations and is passed to the tracker with every call.
``TrackerCriterion`` (built from the config by ``spvis.modeling.stages.stage_criterion``) owns all of it.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from spvis.modeling.criterion import SetCriterion
from spvis.modeling.matcher import MatchCost, match_costs
from spvis.modeling.pgt.reference_contrast import reference_contrastive_loss
from spvis.modeling.rcp import preservation_loss
from spvis.modeling.stages.frozen_cache import (FrozenSegmenterCache, build_frozen_cache, frozen_parts_in_eval,
                                                frozen_segment)
from spvis.modeling.stages.presence import matched_presence
from spvis.modeling.stages.schedule import is_guided, ramp

SEGMENTER_PARTS = ("backbone", "sem_seg_head")  # frozen in the tracker and refiner stages
USED_QUERY_COST = 1e6  # DVIS excludes already assigned queries with this cost


def first_appearances(present: Tensor) -> Tensor:
    """present (N, T) bool -> bool (N, T): True in the first frame each identity is present in."""
    seen_before = present.cumsum(1) - present.long() > 0
    return present & ~seen_before


@torch.no_grad()
def first_appearance_assignment(
    logits: Tensor,  # (B, T, Q, K+1) per-frame class logits of each clip
    masks: Tensor,  # (B, T, Q, h, w) mask logits
    targets: list[dict],  # per clip: labels (N,), masks (N, T, H, W), present (N, T)
    cost: MatchCost,
) -> list[tuple[Tensor, Tensor]]:
    """Per clip (slot indices, target indices): each identity matched in the first frame it appears in, frames
    in order, queries taken earlier excluded; the pairs then hold for every frame.

    The costs of every frame with a first appearance, all clips together, come from one ``match_costs`` pass
    (columns: all identities of the clip; a frame uses those not assigned yet). An identity left over because
    more identities than queries appeared in one frame is retried at the next such frame it is present in.
    """
    presents = [target["present"].cpu() for target in targets]
    slots: list[list[int]] = [[] for _ in targets]
    ids: list[list[int]] = [[] for _ in targets]
    frames = [(b, int(t)) for b, present in enumerate(presents)
              for t in torch.nonzero(first_appearances(present).any(0)).flatten()]
    if frames:
        costs = match_costs(torch.stack([logits[b, t] for b, t in frames]),  # (R, Q, K+1)
                            torch.stack([masks[b, t, :, None] for b, t in frames]),  # (R, Q, 1, h, w)
                            [targets[b]["labels"] for b, _ in frames],
                            [targets[b]["masks"][:, t:t + 1] for b, t in frames], cost)  # per frame (Q, N)
    else:
        costs = []
    used = [torch.zeros(logits.shape[2], dtype=torch.bool) for _ in targets]
    assigned = [torch.zeros(present.shape[0], dtype=torch.bool) for present in presents]
    for (b, t), frame_cost in zip(frames, costs):
        new = torch.nonzero(presents[b][:, t] & ~assigned[b]).flatten()
        matrix = frame_cost[:, new.numpy()].copy()  # (Q, n)
        matrix[used[b].numpy()] = USED_QUERY_COST
        rows, cols = linear_sum_assignment(matrix)
        for r, c in zip(rows.tolist(), cols.tolist()):
            used[b][r] = True
            assigned[b][new[c]] = True
            slots[b].append(r)
            ids[b].append(int(new[c]))
    return [(torch.as_tensor(s, dtype=torch.int64), torch.as_tensor(i, dtype=torch.int64)) for s, i in zip(slots, ids)]


@torch.no_grad()
def frozen_segmenter(model: nn.Module, images: Tensor, frames_per_clip: int,
                     cache: FrozenSegmenterCache | None = None) -> dict[str, Tensor]:
    """Segmenter in eval mode without gradients (through ``cache`` when given) -> {embeds (B, T, Q, C),
    features (B, T, Cm, h, w), logits (B, T, Q, K+1), masks (B, T, Q, h, w)}."""
    with frozen_parts_in_eval(model, SEGMENTER_PARTS):
        seg = frozen_segment(model, images, cache)
    b = seg["pred_embds"].shape[0] // frames_per_clip

    def per_clip(x: Tensor) -> Tensor:
        return x.reshape(b, frames_per_clip, *x.shape[1:])

    return {"embeds": per_clip(seg["pred_embds"]), "features": per_clip(seg["mask_features"]),
            "logits": per_clip(seg["pred_logits"]), "masks": per_clip(seg["pred_masks"])}


def in_slot_order(x: Tensor, indices: Tensor) -> Tensor:
    """Per-frame segmenter outputs x (B, T, Q, ...) gathered by the tracker's alignment indices (B, T, Q)."""
    index = indices.view(*indices.shape, *([1] * (x.dim() - 3))).expand(-1, -1, -1, *x.shape[3:])
    return torch.gather(x, 2, index.to(x.device))


def track_sample(tracker: nn.Module, embeds: Tensor, features: Tensor, clip_frames: int,
                 noise_ratio: float | None = None) -> list[dict]:
    """Run the tracker over consecutive clips of ``clip_frames``, state carried with stop-gradient; embeds
    (B, T, Q, C), features (B, T, Cm, h, w); ``noise_ratio`` is handed to the tracker (None: its configured one).

    Returns one output dict per clip (``ReferringTracker.forward`` layout).
    """
    outputs, state = [], None
    for start in range(0, embeds.shape[1], clip_frames):
        out, state = tracker(embeds[:, start:start + clip_frames], features[:, start:start + clip_frames], state,
                             noise_ratio=noise_ratio)
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


def rcp_preservation(outputs: dict, matched: list[tuple[Tensor, Tensor]], targets: list[dict]) -> Tensor:
    """Causal RCP preservation loss: each frame's compensated query against the stable memory it saw."""
    compensated, memory = outputs["rcp_compensated"], outputs["rcp_memory"]  # (B, T, Q, C)
    b, t, q, c = compensated.shape
    valid = matched_presence(matched, targets, t, q).to(compensated.device)
    # one "frame" per (b, t) so each query is compared with the memory of its own frame
    return preservation_loss(compensated.reshape(b * t, 1, q, c), memory.reshape(b * t, q, c),
                             valid.reshape(b * t, 1, q))


class TrackerCriterion:
    """Stage 2 loss: the per-frame set loss on first-appearance assignments, + DVIS++ reference contrast and
    RCP preservation; owns its SetCriterion (matcher included), the schedules and the frozen-segmenter cache."""

    def __init__(self, criterion: SetCriterion, *, frames_per_clip: int, noise_ratio: float, noise_warmup: float,
                 guided_matching: float, reid_weight: float, preserve_weight: float,
                 frozen_cache: FrozenSegmenterCache | None = None):
        self.criterion = criterion
        self.frames_per_clip = int(frames_per_clip)
        self.max_noise_ratio, self.noise_warmup = float(noise_ratio), float(noise_warmup)
        self.guided_matching = float(guided_matching)
        self.reid_weight, self.preserve_weight = float(reid_weight), float(preserve_weight)
        self.frozen_cache = frozen_cache

    @classmethod
    def from_config(cls, cfg) -> "TrackerCriterion":
        """Loss weights from MODEL.LOSS, schedules from MODEL.TRACKER, clip length from INPUT.SAMPLING_FRAME_NUM."""
        tracker, loss = cfg.MODEL.TRACKER, cfg.MODEL.LOSS
        return cls(SetCriterion.from_config(cfg, num_aux=tracker.DECODER_LAYERS - 1),
                   frames_per_clip=cfg.INPUT.SAMPLING_FRAME_NUM, noise_ratio=tracker.NOISE_RATIO,
                   noise_warmup=tracker.NOISE_WARMUP, guided_matching=tracker.GUIDED_MATCHING,
                   reid_weight=loss.REID_WEIGHT, preserve_weight=loss.PRESERVE_WEIGHT,
                   frozen_cache=build_frozen_cache(cfg))

    def noise_ratio(self, iteration: int, max_iter: int) -> float:
        """Denoising probability at ``iteration``: 0 -> NOISE_RATIO over the first NOISE_WARMUP of training."""
        return self.max_noise_ratio * ramp(iteration, max_iter, self.noise_warmup)

    def guided(self, iteration: int, max_iter: int) -> bool:
        """Whether ``iteration`` assigns ground truth on the frozen segmenter's predictions (else the tracker's)."""
        return is_guided(iteration, max_iter, self.guided_matching)

    def __call__(self, model: nn.Module, images: Tensor, targets: list[dict], clip_len: int, iteration: int,
                 max_iter: int) -> dict[str, Tensor]:
        """Weighted tracker losses. images (B*T, 3, Hp, Wp) normalised; targets per sample {labels (N,),
        ids (N,), masks (N, T, Hp, Wp) float, present (N, T) bool}; T = clip_len = frames per sample."""
        clip_frames = self.frames_per_clip if clip_len % self.frames_per_clip == 0 else clip_len
        seg = frozen_segmenter(model, images, clip_len, self.frozen_cache)
        clips = track_sample(model.tracker, seg["embeds"], seg["features"], clip_frames,
                             noise_ratio=self.noise_ratio(iteration, max_iter))
        outputs = _concat_clips(clips)
        if self.guided(iteration, max_iter):
            match_logits = in_slot_order(seg["logits"], outputs["match_indices"])  # (B, T, Q, K+1)
            match_masks = in_slot_order(seg["masks"], outputs["match_indices"])  # (B, T, Q, h, w)
        else:
            match_logits = outputs["pred_logits"].detach()
            match_masks = outputs["pred_masks"].detach().transpose(1, 2)
        matched = first_appearance_assignment(match_logits, match_masks, targets, self.criterion.matcher.cost)
        frame_targets, frame_indices = [], []
        for target, indices in zip(targets, matched):
            for t in range(clip_len):
                frame_targets.append({"labels": target["labels"], "masks": target["masks"][:, t:t + 1]})
                frame_indices.append(indices)
        per_frame = _per_frame(outputs)
        per_frame["aux_outputs"] = [_per_frame(aux) for aux in outputs["aux_outputs"]]
        losses = self.criterion.weighted(self.criterion(per_frame, frame_targets, indices=frame_indices))
        if self.reid_weight > 0:
            reid = reference_contrastive_loss(outputs["pred_references"], [slots for slots, _ in matched])
            if reid is not None:
                losses["loss_reid"] = self.reid_weight * reid
        if "rcp_compensated" in outputs and self.preserve_weight > 0:
            losses["loss_preserve"] = self.preserve_weight * rcp_preservation(outputs, matched, targets)
        return losses
