"""Stage 1 (MinVIS style): per-frame training of the segmenter; every frame is an image with its own matching."""

from __future__ import annotations

from torch import Tensor, nn

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


class SegmenterCriterion:
    """Stage 1 loss: the set loss of every frame against the instances present in it (no schedules)."""

    def __init__(self, criterion: SetCriterion):
        self.criterion = criterion

    @classmethod
    def from_config(cls, cfg) -> "SegmenterCriterion":
        """MODEL.LOSS weights, one aux prediction set per decoder layer (MODEL.DECODER.DEC_LAYERS)."""
        return cls(SetCriterion.from_config(cfg))

    def __call__(self, model: nn.Module, images: Tensor, targets: list[dict], clip_len: int, iteration: int,
                 max_iter: int) -> dict[str, Tensor]:
        """Weighted segmenter losses for normalised, padded images (B*T, 3, Hp, Wp) and per-clip targets."""
        out = model.segment(images)
        outputs = _as_video(out)
        outputs["aux_outputs"] = [_as_video(aux) for aux in out["aux_outputs"]]
        losses = self.criterion(outputs, frame_targets(targets, clip_len))
        return self.criterion.weighted(losses)
