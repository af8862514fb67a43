"""MinVIS-style alignment of the current segmenter queries to the track slots (DVIS reference §2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from spvis.modeling.pgt.association import mask_iou


def cosine_cost(ref: Tensor, cur: Tensor) -> Tensor:
    """1 - cosine similarity with DVIS's normalisation (norm + 1e-6); NaN costs become 0.

    ref (Q, C), cur (Q, C) -> (Q, Q) rows = slots, columns = current queries.
    """
    ref = ref / (ref.norm(dim=1, keepdim=True) + 1e-6)
    cur = cur / (cur.norm(dim=1, keepdim=True) + 1e-6)
    cost = 1 - ref @ cur.t()
    return torch.nan_to_num(cost, nan=0.0)


def official_indices(cost: np.ndarray) -> np.ndarray:
    """The gather index DVIS's ``match_embds`` computes from a host cost (Q, Q): slot s takes ``cur[idx[s]]``.

    The official code solves the assignment on the transposed cost and keeps the *column* indices
    (for current query c, the slot it was assigned to) but then uses them as a gather index. That is
    the optimal alignment only for involutions; we keep the quirk so imported weights reproduce the
    official outputs (see tests/data/dvis_official_tiny/README.md, "Tracker alignment"). -> (Q,) int64.
    """
    _, columns = linear_sum_assignment(cost.T)
    return columns.astype(np.int64)


def hungarian_indices(cost: np.ndarray) -> np.ndarray:
    """The optimal alignment of a host cost (Q, Q) as a gather index: slot s takes ``cur[idx[s]]``. -> (Q,) int64."""
    rows, columns = linear_sum_assignment(cost)
    index = np.empty(len(rows), dtype=np.int64)
    index[rows] = columns
    return index


ALIGNMENTS = {"dvis": official_indices, "hungarian": hungarian_indices}


def alignment_costs(ref: Tensor, cur: Tensor, ref_masks: Tensor | None = None, cur_masks: Tensor | None = None,
                    mask_weight: float = 0.0, ref_labels: Tensor | None = None,
                    cur_labels: Tensor | None = None) -> Tensor:
    """Per-clip matching costs on the device, float32 (B, Q, Q), from ref, cur (Q, B, C) (rows = slots).

    Each clip's cost is computed on its own (the same arithmetic for any B) and stacked, so the caller brings every
    clip's cost to the host in one transfer. Inputs are cast to float32 first: under autocast the matmul would
    otherwise run in bf16/fp16. With ``mask_weight`` > 0 and both masks given (``ref_masks`` (B, Q, N) bool, each
    slot's last confident mask; ``cur_masks`` (B, Q, N) bool), ``mask_weight * (1 - IoU)`` is added: look-alike
    objects (same class and appearance) have near-equal query embeddings, so cosine alone lets two slots swap them
    from frame to frame, while where each object is overlaps where it was. With labels (``ref_labels``,
    ``cur_labels`` (B, Q) int64) the overlap counts only between equal labels: an occluder that appears where the
    object it hides was is another object.
    """
    costs = torch.stack([cosine_cost(ref[:, b].detach().float(), cur[:, b].detach().float()).float()
                         for b in range(cur.shape[1])])
    if mask_weight > 0 and ref_masks is not None and cur_masks is not None:
        iou = mask_iou(ref_masks, cur_masks)  # (B, Q, Q)
        if ref_labels is not None and cur_labels is not None:
            iou = iou * (ref_labels.unsqueeze(-1) == cur_labels.unsqueeze(-2))
        costs = costs + mask_weight * (1 - iou)
    return costs


# A slot remembers the mask of a query whose segmenter class score reaches this (the mask-overlap alignment term).
MASK_MEMORY_SCORE = 0.5


@dataclass
class SlotMasks:
    """Each slot's last confident segmenter mask and label (the mask-overlap alignment term's memory), with the
    motion of its centre for ``propagated``."""

    masks: Tensor  # (B, Q, h, w) bool; empty for a slot that never held a confident query
    labels: Tensor  # (B, Q) int64; -1 where masks is empty
    centres: Tensor  # (B, Q, 2) float32 (y, x) centre of masks, in mask pixels
    velocity: Tensor  # (B, Q, 2) float32 pixels per frame (smoothed), 0 until seen twice
    age: Tensor  # (B, Q) float32 frames since masks was seen (1 = on the previous frame)

    def propagated(self) -> Tensor:
        """The remembered masks moved by velocity x age: where each object should be now. -> (B, Q, h, w) bool."""
        return translate_masks(self.masks, self.velocity * self.age.unsqueeze(-1))


@dataclass
class FrameMasks:
    """One frame's segmenter masks for the overlap term, kept only for confident queries."""

    masks: Tensor  # (B, Q, h, w) bool, empty where not confident
    labels: Tensor  # (B, Q) int64
    confident: Tensor  # (B, Q) bool


VELOCITY_SMOOTHING = 0.5  # weight of the newest displacement in the slot's velocity


def translate_masks(masks: Tensor, shift: Tensor) -> Tensor:
    """Move every mask by its own (dy, dx) (rounded to whole pixels; what leaves the frame is lost).
    masks (B, Q, h, w) bool, shift (B, Q, 2) -> (B, Q, h, w) bool."""
    batch, slots, height, width = masks.shape
    dy, dx = shift.round().long().unbind(-1)  # (B, Q)
    rows = torch.arange(height, device=masks.device).view(1, 1, height) - dy.unsqueeze(-1)  # source row per row
    cols = torch.arange(width, device=masks.device).view(1, 1, width) - dx.unsqueeze(-1)
    valid = ((rows >= 0) & (rows < height)).unsqueeze(-1) & ((cols >= 0) & (cols < width)).unsqueeze(-2)
    moved = torch.gather(masks, 2, rows.clamp(0, height - 1).unsqueeze(-1).expand(-1, -1, -1, width))
    moved = torch.gather(moved, 3, cols.clamp(0, width - 1).unsqueeze(-2).expand(-1, -1, height, -1))
    return moved & valid


def mask_centres(masks: Tensor) -> Tensor:
    """(y, x) centre of every mask (B, Q, h, w) bool -> (B, Q, 2) float32 (0 for an empty mask)."""
    weights = masks.float()
    area = weights.sum((-2, -1)).clamp(min=1.0)
    ys = torch.arange(masks.shape[-2], device=masks.device, dtype=torch.float32)
    xs = torch.arange(masks.shape[-1], device=masks.device, dtype=torch.float32)
    return torch.stack([(weights.sum(-1) * ys).sum(-1) / area, (weights.sum(-2) * xs).sum(-1) / area], -1)


def confident_masks(mask_logits: Tensor, class_logits: Tensor) -> FrameMasks:
    """The segmenter's masks for the overlap term from (B, Q, h, w) mask logits and (B, Q, K+1) class logits: a
    query counts when its class score reaches MASK_MEMORY_SCORE and its mask is non-empty (a no-object duplicate of an
    object overlaps it too and must not be pulled toward its slot)."""
    masks = mask_logits.detach() > 0
    scores, labels = class_logits.detach().float().softmax(-1)[..., :-1].max(-1)
    confident = (scores >= MASK_MEMORY_SCORE) & masks.flatten(2).any(-1)
    return FrameMasks(masks & confident[..., None, None], labels, confident)


def remember_slot_masks(previous: SlotMasks | None, frame: FrameMasks, indices: Tensor) -> SlotMasks:
    """Each slot's memory after this frame: the mask and label of the query aligned to it where that query is
    confident, else the slot's last confident ones (an occluded object is looked for where it was last seen, moved by
    its velocity; a slot that never held an object keeps an empty mask, which overlaps nothing). The velocity is
    the smoothed displacement of the centre per frame between sightings of the same label. indices (B, Q): slot s
    took query indices[b, s]."""
    height, width = frame.masks.shape[-2:]
    gather = indices[..., None, None].expand(-1, -1, height, width)
    masks = torch.gather(frame.masks, 1, gather)
    labels = torch.gather(frame.labels, 1, indices)
    held = torch.gather(frame.confident, 1, indices)  # (B, Q)
    centres = mask_centres(masks)
    if previous is None or previous.masks.shape != masks.shape:
        zeros = torch.zeros_like(centres)
        previous = SlotMasks(torch.zeros_like(masks), torch.full_like(labels, -1), zeros, zeros,
                             torch.zeros(labels.shape, device=labels.device))
    same = held & (previous.labels == labels)  # seen before as the same object: a displacement
    step = (centres - previous.centres) / previous.age.clamp(min=1.0).unsqueeze(-1)
    fresh = torch.where((previous.velocity == 0).all(-1, keepdim=True), step,
                        VELOCITY_SMOOTHING * step + (1 - VELOCITY_SMOOTHING) * previous.velocity)
    velocity = torch.where(same.unsqueeze(-1), fresh, torch.where(held.unsqueeze(-1), torch.zeros_like(step),
                                                                   previous.velocity))
    return SlotMasks(
        masks=torch.where(held[..., None, None], masks, previous.masks),
        labels=torch.where(held, labels, previous.labels),
        centres=torch.where(held.unsqueeze(-1), centres, previous.centres),
        velocity=velocity,
        age=torch.where(held, torch.ones_like(previous.age), previous.age + 1),
    )


def slot_costs(ref: Tensor, cur: Tensor, slots: SlotMasks | None, frame: FrameMasks | None,
               mask_weight: float, motion: bool = False) -> Tensor:
    """``alignment_costs`` with the overlap term of a slot memory and a frame (either None, or a frame of another
    size: embeddings alone); ``motion``: the remembered masks are first moved by each slot's velocity
    (``SlotMasks.propagated``). ref, cur (Q, B, C) -> (B, Q, Q)."""
    if slots is None or frame is None or slots.masks.shape != frame.masks.shape:
        return alignment_costs(ref, cur)
    remembered = slots.propagated() if motion else slots.masks
    return alignment_costs(ref, cur, remembered.flatten(2), frame.masks.flatten(2), mask_weight, slots.labels,
                           frame.labels)


def solve_alignments(costs: Tensor, alignment: str = "dvis") -> Tensor:
    """Gather indices (B, Q) int64 on the costs' device from costs (B, Q, Q): one host transfer for all clips."""
    solve = ALIGNMENTS[alignment]
    host = costs.cpu().numpy()  # the one transfer; scipy solves each clip on the host
    return torch.from_numpy(np.stack([solve(cost) for cost in host])).to(costs.device)


def match_batch(ref: Tensor, cur: Tensor, alignment: str = "dvis", slots: SlotMasks | None = None,
                frame: FrameMasks | None = None, mask_weight: float = 0.0, motion: bool = False) -> Tensor:
    """Per-clip alignment indices. ref, cur: (Q, B, C) -> (B, Q) int64.

    ``alignment``: ``dvis`` (the official gather quirk, needed to reproduce official weights) or
    ``hungarian`` (the optimal assignment; on the synthetic benchmark the two differ on 57 % of frames).
    DVIS matches batch element 0 only and applies its indices to every clip; we match each clip on its
    own, which is identical for B = 1 (inference) and correct for B > 1. ``slots`` / ``frame`` / ``mask_weight`` /
    ``motion``: the mask-overlap term (``slot_costs``; off by default, as DVIS).
    """
    return solve_alignments(slot_costs(ref, cur, slots, frame, mask_weight, motion), alignment)


def gather_slots(embeds: Tensor, indices: Tensor) -> Tensor:
    """Slot s of clip b takes ``embeds[indices[b, s], b]``. embeds (Q, B, C), indices (B, Q) -> (Q, B, C)."""
    index = indices.t().unsqueeze(-1).expand(-1, -1, embeds.shape[-1])  # (Q, B, C)
    return torch.gather(embeds, 0, index)
