"""DVIS++ contrastive loss on the tracker's references: a slot's reference must stay closest to its own
reference on the neighbouring frames, among all slots (IDOL/QDTrack multi-positive log-sum-exp form).

loss = log(1 + sum_n exp(s(a, n) - s(a, p))) with s = cosine / REID_TEMPERATURE. DVIS++ uses raw dot
products; our queries are LayerNorm outputs whose dot products grow with C and saturate the loss, so we
use a temperature-scaled cosine (a documented choice).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

REID_TEMPERATURE = 0.1


def reference_contrastive_loss(references: list[Tensor | None], slots: list[Tensor]) -> Tensor | None:
    """references: per frame (B, Q, C) or None (first frame of a video); slots: per clip the matched slot
    indices (M_b,). Anchors are matched slots' references at t, positives the same slots at t-1 and t+1,
    negatives every other slot there. Returns the mean over anchor/neighbour pairs, or None without any."""
    total, count = None, 0
    for t, anchor_frame in enumerate(references):
        if anchor_frame is None:
            continue
        for neighbour in (t - 1, t + 1):
            if not 0 <= neighbour < len(references) or references[neighbour] is None:
                continue
            keys_frame = references[neighbour]
            for b, matched in enumerate(slots):
                if matched.numel() == 0:
                    continue
                matched = matched.to(anchor_frame.device)
                anchors = F.normalize(anchor_frame[b, matched], dim=-1)  # (M, C)
                keys = F.normalize(keys_frame[b], dim=-1)  # (Q, C)
                sims = anchors @ keys.t() / REID_TEMPERATURE  # (M, Q)
                positive = sims.gather(1, matched[:, None])  # (M, 1)
                is_positive = torch.zeros_like(sims, dtype=torch.bool)
                is_positive[torch.arange(len(matched)), matched] = True
                margins = (sims - positive).masked_fill(is_positive, float("-inf"))
                terms = torch.logsumexp(torch.cat([torch.zeros_like(positive), margins], 1), dim=1)  # (M,)
                total = terms.sum() if total is None else total + terms.sum()
                count += len(matched)
    return None if total is None else total / count
