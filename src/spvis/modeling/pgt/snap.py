"""Snap tracks to the segmenter's per-frame predictions (TEST.SNAP_IOU): the tracker decides who is who, the
segmenter draws the frame.

A tracker trained for minutes on a frozen segmenter refines its queries for identity, but its own class and mask
heads are worse per frame than the segmenter's it started from (5-8 DetA points on the synthetic benchmark). Each
track slot is matched one-to-one (Hungarian on mask IoU) to the current frame's segmenter queries; where the IoU
reaches the threshold, the slot emits that query's class logits and mask logits instead of its own. A slot with no
such partner (an occluded or drifting object the tracker keeps alive) keeps its own prediction, or, with
``hide_unmatched`` (TEST.SNAP_UNMATCHED hide), emits an empty mask: the frame then shows only what the segmenter
found, so per-frame detection equals the segmenter's and the tracker only decides identities.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

HIDDEN_MASK_LOGIT = -1e4  # a hidden slot's mask logits: empty at any resize, finite in fp16


def mask_iou_matrix(a: Tensor, b: Tensor) -> Tensor:
    """IoU of binary masks a (Qa, h, w) and b (Qb, h, w) -> (Qa, Qb) float32."""
    fa, fb = a.flatten(1).float(), b.flatten(1).float()  # (Qa, P), (Qb, P)
    inter = fa @ fb.t()
    union = fa.sum(1, keepdim=True) + fb.sum(1)[None, :] - inter
    return inter / union.clamp(min=1.0)


@torch.no_grad()
def snap_to_segmenter(track_out: dict, seg: dict, iou_thr: float, hide_unmatched: bool = False) -> dict:
    """``track_out`` with pred_logits (B, Q, K+1) and pred_masks (B, Q, h, w) replaced, per slot, by the segmenter
    query (``seg`` pred_logits / pred_masks, same layout) its mask overlaps by at least ``iou_thr`` (one-to-one).
    Everything else (track ids, embeddings) is kept; ``hide_unmatched`` empties the masks of the slots left without
    a partner (their class logits stay, so a track's video score is its visible frames'). ``iou_thr`` <= 0 returns
    ``track_out`` unchanged."""
    if iou_thr <= 0:
        return track_out
    logits, masks = track_out["pred_logits"].clone(), track_out["pred_masks"].clone()
    seg_logits, seg_masks = seg["pred_logits"].to(logits.dtype), seg["pred_masks"].to(masks.dtype)
    # every clip's (Q, Q) IoU in one host transfer; scipy solves each on the host
    ious = torch.stack([mask_iou_matrix(masks[b] > 0, seg_masks[b] > 0) for b in range(masks.shape[0])]).cpu().numpy()
    for b, iou in enumerate(ious):
        rows, cols = linear_sum_assignment(-iou)
        keep = iou[rows, cols] >= iou_thr
        slots = torch.as_tensor(rows[keep].astype(np.int64), device=masks.device)
        queries = torch.as_tensor(cols[keep].astype(np.int64), device=masks.device)
        logits[b, slots] = seg_logits[b, queries]
        masks[b, slots] = seg_masks[b, queries]
        if hide_unmatched:
            unmatched = torch.ones(masks.shape[1], dtype=torch.bool, device=masks.device)
            unmatched[slots] = False
            masks[b, unmatched] = HIDDEN_MASK_LOGIT
    return dict(track_out, pred_logits=logits, pred_masks=masks)
