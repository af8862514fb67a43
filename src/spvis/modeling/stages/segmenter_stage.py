"""Stage 1: training of the per-frame segmenter; every frame is an image with its own losses.

Matching is per frame (MinVIS style) by default. With MODEL.LOSS.CLIP_MATCHING and clips of T > 1 frames, the
queries are matched to the clip's instances once for the whole clip (the Mask2Former-VIS cost summed over its
frames, class probabilities averaged), and that assignment is used in every frame (instances absent from a
frame are no-object there). A query then has to keep its object from frame to frame: a segmenter trained for
minutes per frame lets its query slots drift between objects, which splits the tracks of MinVIS-style
association (slot = identity), while its per-frame quality is unchanged.

With MODEL.LOSS.QUERY_CONTRAST_WEIGHT > 0 the stage also trains what MinVIS-style association reads: for every
pair of frames of a clip and every instance matched in both, the cosine similarity of its query embedding
(``pred_embds``) in one frame to all Q embeddings of the other is a softmax whose target is the query holding the
same instance there (InfoNCE, as the contrastive association of IDOL / CTVIS, here on the embeddings MinVIS
matches). The unmatched queries of the other frame are negatives too, so a duplicate query near the object is
pushed away from it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from spvis.modeling.criterion import SetCriterion
from spvis.modeling.matcher import MatchCost, match_costs


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


class ClipConsistentMatcher:
    """``(per-frame outputs, per-frame targets) -> per-frame indices`` from one assignment per clip.

    The per-frame outputs of B clips of T frames (pred_logits (B*T, Q, K+1), pred_masks (B*T, Q, 1, h, w),
    frames of a clip consecutive) are matched to the clip targets (masks (N, T, H, W), empty where absent) with
    the clip's mean class probabilities and all its frames' masks; frame t of clip b then pairs slot s with the
    frame target of instance i wherever i is present in t.
    """

    def __init__(self, clip_targets: list[dict], clip_len: int, cost: MatchCost):
        self.clip_targets, self.clip_len, self.cost = clip_targets, int(clip_len), cost

    @torch.no_grad()
    def __call__(self, outputs: dict, frame_targets_: list[dict]) -> list[tuple[Tensor, Tensor]]:
        t = self.clip_len
        logits = outputs["pred_logits"]
        b, q = logits.shape[0] // t, logits.shape[1]
        clip_logits = logits.float().softmax(-1).view(b, t, q, -1).mean(1).log()  # (B, Q, K+1) log mean prob
        masks = outputs["pred_masks"][:, :, 0]  # (B*T, Q, h, w)
        clip_masks = masks.reshape(b, t, q, *masks.shape[-2:]).transpose(1, 2)  # (B, Q, T, h, w)
        costs = match_costs(clip_logits, clip_masks, [c["labels"] for c in self.clip_targets],
                            [c["masks"] for c in self.clip_targets], self.cost)
        indices = []
        for clip, cost in zip(self.clip_targets, costs):
            slots, ids = linear_sum_assignment(cost) if cost.shape[1] else ([], [])
            present = clip["present"].cpu()  # (N, T)
            for frame in range(t):
                # column of instance i among the instances present in this frame (frame_targets' order)
                column = torch.cumsum(present[:, frame].long(), 0) - 1
                pairs = [(int(s), int(column[i])) for s, i in zip(slots, ids) if bool(present[i, frame])]
                indices.append((torch.as_tensor([p for p, _ in pairs], dtype=torch.int64),
                                torch.as_tensor([c for _, c in pairs], dtype=torch.int64)))
        return indices


QUERY_CONTRAST_TEMPERATURE = 0.1  # softmax temperature of the cosine similarities (IDOL / CTVIS range)


def query_contrast_loss(embeds: Tensor, indices: list[tuple[Tensor, Tensor]], targets: list[dict], clip_len: int,
                        temperature: float = QUERY_CONTRAST_TEMPERATURE) -> Tensor:
    """InfoNCE across the frames of each clip on query embeddings ``embeds`` (B*T, Q, C), frames of a clip
    consecutive. ``indices`` are the per-frame (query, frame-target column) pairs of the last decoder layer,
    ``targets`` the clips' (``present`` (N, T)). Mean over (instance, ordered frame pair); 0 without pairs."""
    normed = F.normalize(embeds.float(), dim=-1)
    total, count = normed.new_zeros(()), 0
    for b, target in enumerate(targets):
        present = target["present"].cpu()  # (N, T)
        query_of: dict[tuple[int, int], int] = {}  # (frame, instance) -> query
        for t in range(clip_len):
            instances = torch.nonzero(present[:, t]).flatten()
            queries, columns = indices[b * clip_len + t]
            for q, c in zip(queries.tolist(), columns.tolist()):
                query_of[(t, int(instances[c]))] = q
        for t in range(clip_len):
            for u in range(clip_len):
                pairs = [(query_of[(t, i)], query_of[(u, i)]) for i in range(present.shape[0])
                         if u != t and (t, i) in query_of and (u, i) in query_of]
                if not pairs:
                    continue
                anchors = torch.as_tensor([a for a, _ in pairs], device=normed.device)
                positives = torch.as_tensor([p for _, p in pairs], device=normed.device)
                similarity = normed[b * clip_len + t, anchors] @ normed[b * clip_len + u].t()  # (n, Q)
                total = total + F.cross_entropy(similarity / temperature, positives, reduction="sum")
                count += len(pairs)
    return total / max(count, 1)


class _RecordingMatcher:
    """Wraps a matcher and keeps the indices it gave for one outputs dict (the last decoder layer's)."""

    def __init__(self, matcher, outputs: dict):
        self.matcher, self.outputs, self.indices = matcher, outputs, None

    def __call__(self, outputs: dict, targets: list[dict]):
        indices = self.matcher(outputs, targets)
        if outputs is self.outputs:
            self.indices = indices
        return indices


class SegmenterCriterion:
    """Stage 1 loss: the set loss of every frame against the instances present in it (no schedules)."""

    def __init__(self, criterion: SetCriterion, clip_matching: bool = False, query_contrast_weight: float = 0.0):
        self.criterion = criterion
        self.clip_matching = bool(clip_matching)
        self.query_contrast_weight = float(query_contrast_weight)

    @classmethod
    def from_config(cls, cfg) -> "SegmenterCriterion":
        """MODEL.LOSS weights, one aux prediction set per decoder layer (MODEL.DECODER.DEC_LAYERS)."""
        return cls(SetCriterion.from_config(cfg), clip_matching=cfg.MODEL.LOSS.CLIP_MATCHING,
                   query_contrast_weight=cfg.MODEL.LOSS.QUERY_CONTRAST_WEIGHT)

    def __call__(self, model: nn.Module, images: Tensor, targets: list[dict], clip_len: int, iteration: int,
                 max_iter: int) -> dict[str, Tensor]:
        """Weighted segmenter losses for normalised, padded images (B*T, 3, Hp, Wp) and per-clip targets."""
        out = model.segment(images)
        outputs = _as_video(out)
        outputs["aux_outputs"] = [_as_video(aux) for aux in out["aux_outputs"]]
        matcher = None
        if self.clip_matching and clip_len > 1:
            matcher = ClipConsistentMatcher(targets, clip_len, self.criterion.matcher.cost)
        contrast = self.query_contrast_weight > 0 and clip_len > 1
        if contrast:
            matcher = _RecordingMatcher(matcher or self.criterion.matcher, outputs)
        losses = self.criterion.weighted(self.criterion(outputs, frame_targets(targets, clip_len), matcher=matcher))
        if contrast:
            losses["loss_query_contrast"] = self.query_contrast_weight * query_contrast_loss(
                out["pred_embds"], matcher.indices, targets, clip_len)
        return losses
