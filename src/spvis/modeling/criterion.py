"""Set-prediction losses of Mask2Former-VIS (reference §4): class CE with a down-weighted no-object class,
mask BCE and dice on importance-sampled points, repeated on every auxiliary prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spvis.modeling.matcher import HungarianMatcher
from spvis.modeling.point_sampling import point_sample, uncertain_point_coords


def sigmoid_ce_loss(logits: Tensor, labels: Tensor, num_masks: float) -> Tensor:
    """logits, labels (R, P) -> mean BCE per row, summed, divided by num_masks."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1).sum() / num_masks


def dice_loss(logits: Tensor, labels: Tensor, num_masks: float) -> Tensor:
    """logits, labels (R, P) -> dice loss (+1 smoothing) summed over rows, divided by num_masks."""
    probs = logits.sigmoid()
    numerator = 2 * (probs * labels).sum(-1)
    denominator = probs.sum(-1) + labels.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


class SetCriterion(nn.Module):
    """``forward(outputs, targets, indices=None) -> {loss_ce, loss_mask, loss_dice, loss_ce_0, ...}`` unweighted;
    ``weight_dict`` holds the weight of every key (apply with ``weighted``)."""

    def __init__(self, num_classes: int, matcher: HungarianMatcher, *, class_weight: float = 2.0,
                 mask_weight: float = 5.0, dice_weight: float = 5.0, eos_coef: float = 0.1,
                 num_points: int = 12544, oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 deep_supervision: bool = True, num_aux: int = 9):
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.deep_supervision = deep_supervision
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight, persistent=False)
        base = {"loss_ce": class_weight, "loss_mask": mask_weight, "loss_dice": dice_weight}
        self.weight_dict = dict(base)
        if deep_supervision:
            for i in range(num_aux):
                self.weight_dict.update({f"{key}_{i}": value for key, value in base.items()})

    @classmethod
    def from_config(cls, cfg, *, num_aux: int | None = None, num_points: int | None = None) -> "SetCriterion":
        """MODEL.LOSS weights; ``num_aux`` aux prediction sets (default DEC_LAYERS) and ``num_points`` points for
        the losses and the matching (default TRAIN_NUM_POINTS; the refiner uses TRAIN_NUM_POINTS x T)."""
        loss = cfg.MODEL.LOSS
        points = loss.TRAIN_NUM_POINTS if num_points is None else int(num_points)
        matcher = HungarianMatcher(loss.CLASS_WEIGHT, loss.MASK_WEIGHT, loss.DICE_WEIGHT, points)
        return cls(cfg.MODEL.NUM_CLASSES, matcher, class_weight=loss.CLASS_WEIGHT, mask_weight=loss.MASK_WEIGHT,
                   dice_weight=loss.DICE_WEIGHT, eos_coef=loss.NO_OBJECT_WEIGHT, num_points=points,
                   oversample_ratio=loss.OVERSAMPLE_RATIO, importance_sample_ratio=loss.IMPORTANCE_SAMPLE_RATIO,
                   deep_supervision=loss.DEEP_SUPERVISION,
                   num_aux=cfg.MODEL.DECODER.DEC_LAYERS if num_aux is None else num_aux)

    def weighted(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        """Multiply every loss by its weight (keys without a weight are dropped)."""
        return {key: value * self.weight_dict[key] for key, value in losses.items() if key in self.weight_dict}

    def loss_labels(self, outputs: dict, targets: list[dict], indices) -> Tensor:
        logits = outputs["pred_logits"].float()  # (B, Q, K+1)
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        for b, (pred_idx, tgt_idx) in enumerate(indices):
            target_classes[b, pred_idx.to(logits.device)] = targets[b]["labels"][tgt_idx.to(logits.device)]
        return F.cross_entropy(logits.transpose(1, 2), target_classes, self.empty_weight.to(logits.device))

    def loss_masks(self, outputs: dict, targets: list[dict], indices, num_masks: float) -> tuple[Tensor, Tensor]:
        pred = outputs["pred_masks"]  # (B, Q, T, h, w)
        # one advanced-indexing gather over all clips (Mask2Former's src permutation index): its backward is a
        # single scatter, where a per-clip pred[b] would zero-fill and add the whole (B, Q, T, h, w) gradient
        # once per clip (measured: 20% of a 20-frame tracker step)
        clip_idx = torch.cat([torch.full_like(p, b) for b, (p, _) in enumerate(indices)]).to(pred.device)
        query_idx = torch.cat([p for p, _ in indices]).to(pred.device)
        src = pred[clip_idx, query_idx]  # (M, T, h, w)
        tgt = torch.cat([t["masks"][i.to(pred.device)] for t, (_, i) in zip(targets, indices)], 0)
        if src.shape[0] == 0:
            zero = pred.sum() * 0.0
            return zero, zero
        src = src.flatten(0, 1)[:, None].float()  # (M*T, 1, h, w)
        tgt = tgt.flatten(0, 1)[:, None].to(src)  # (M*T, 1, H, W)
        with torch.no_grad():
            coords = uncertain_point_coords(src, self.num_points, self.oversample_ratio, self.importance_sample_ratio)
            labels = point_sample(tgt, coords).squeeze(1)  # (M*T, P)
        logits = point_sample(src, coords).squeeze(1)
        return sigmoid_ce_loss(logits, labels, num_masks), dice_loss(logits, labels, num_masks)

    def _single(self, outputs: dict, targets: list[dict], indices, num_masks: float) -> dict[str, Tensor]:
        loss_mask, loss_dice = self.loss_masks(outputs, targets, indices, num_masks)
        return {"loss_ce": self.loss_labels(outputs, targets, indices), "loss_mask": loss_mask, "loss_dice": loss_dice}

    def forward(self, outputs: dict, targets: list[dict], indices=None, matcher=None) -> dict[str, Tensor]:
        """outputs: pred_logits (B, Q, K+1), pred_masks (B, Q, T, h, w), aux_outputs; targets: labels, masks (N, T, H, W).

        ``indices`` (fixed (pred, tgt) pairs per clip) skips matching on every prediction set; ``matcher``
        (``(outputs, targets) -> indices``) replaces the Hungarian matcher on every prediction set.
        """
        # Normalised by this micro-batch's own mask count. Mask2Former averages the count over ranks instead;
        # our trainer splits the global batch into micro-batches independently of the process count, and a
        # per-micro-batch count is what keeps N processes equal to one (and saves a collective per forward).
        num_masks = float(max(sum(len(t["labels"]) for t in targets), 1))
        match = matcher or self.matcher
        main_indices = match(outputs, targets) if indices is None else indices
        losses = self._single(outputs, targets, main_indices, num_masks)
        if self.deep_supervision:
            for i, aux in enumerate(outputs.get("aux_outputs", [])):
                aux_indices = match(aux, targets) if indices is None else indices
                losses.update({f"{k}_{i}": v for k, v in self._single(aux, targets, aux_indices, num_masks).items()})
        return losses
