"""Refiner training stage: frozen segmenter/tracker, refiner-only gradients, RCP/SIM switches add their losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spvis.modeling.rcp import VideoRefinementCompensator
from spvis.modeling.refiner import TemporalRefiner
from spvis.modeling.sim import SpatialInteractionModule
from spvis.modeling.stages.refiner_stage import compute_losses, matched_presence

Q, C, K, T = 5, 16, 3, 4


class FakeHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, C, 1)
        self.queries = nn.Parameter(torch.randn(Q, C))

    def forward(self, images):
        features = self.proj(F.avg_pool2d(images, 4))
        return {"pred_embds": torch.tanh(self.queries[None] + features.mean(dim=(2, 3))[:, None]),
                "mask_features": features}


class FakeTracker(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(C, C)

    def forward(self, embeds, features):  # (B, T, Q, C), (B, T, Cm, h, w)
        out = torch.tanh(self.mix(embeds))
        return {"pred_embds": out, "pred_masks": torch.einsum("btqc,btchw->bqthw", out, features)}, None

    def frame_forward(self, embeds):
        return torch.tanh(self.mix(embeds) + embeds)


class IdentityMatchCriterion(nn.Module):
    """Slot i <-> target i; CE on video logits + BCE on masks: enough to exercise the stage."""

    def matcher(self, outputs, targets):
        return [(torch.arange(len(t["labels"])), torch.arange(len(t["labels"]))) for t in targets]

    def forward(self, outputs, targets, indices):
        losses = {}
        for name, out in [("", outputs)] + [(f"_{i}", a) for i, a in enumerate(outputs["aux_outputs"])]:
            ce, bce = 0.0, 0.0
            for b, (pred_idx, tgt_idx) in enumerate(indices):
                labels = torch.full((Q,), K)
                labels[pred_idx] = targets[b]["labels"][tgt_idx]
                ce = ce + F.cross_entropy(out["pred_logits"][b], labels)
                masks = out["pred_masks"][b, pred_idx]  # (M, T, h, w)
                gt = F.interpolate(targets[b]["masks"][tgt_idx], size=masks.shape[-2:])
                bce = bce + F.binary_cross_entropy_with_logits(masks, gt)
            losses[f"loss_ce{name}"] = 2.0 * ce
            losses[f"loss_mask{name}"] = 5.0 * bce
        return losses


class FakeModel(nn.Module):
    def __init__(self, sim=False, rcp=False):
        super().__init__()
        torch.manual_seed(0)
        self.sem_seg_head = FakeHead()
        self.tracker = FakeTracker()
        self.refiner = TemporalRefiner(
            num_classes=K, hidden_dim=C, nheads=2, dim_feedforward=32, num_layers=2, mask_dim=C,
            sim=SpatialInteractionModule(hidden_dim=C, mask_dim=C, nheads=2, feature_stride=1) if sim else None,
            rcp=VideoRefinementCompensator(C, preserve_weight=1.0, contrast_weight=1.0) if rcp else None)
        self.criterion = IdentityMatchCriterion()
        for part in (self.sem_seg_head, self.tracker):
            part.requires_grad_(False)

    def segment(self, images):
        return self.sem_seg_head(images)


def _batch(b=2):
    torch.manual_seed(1)
    images = torch.randn(b * T, 3, 32, 32)
    targets = []
    for _ in range(b):
        masks = (torch.rand(2, T, 32, 32) > 0.5).float()
        present = torch.tensor([[True] * T, [True, True, False, False]])
        masks[1, 2:] = 0
        targets.append({"labels": torch.tensor([0, 2]), "ids": torch.tensor([1, 2]), "masks": masks,
                        "present": present})
    return images, targets


def test_plain_stage_trains_only_the_refiner_and_keeps_modes():
    model = FakeModel().train()
    images, targets = _batch()
    losses = compute_losses(model, images, targets, clip_len=T)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_ce_0", "loss_mask_0"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is None for p in model.sem_seg_head.parameters())
    assert all(p.grad is None for p in model.tracker.parameters())
    assert model.refiner.class_embed.weight.grad.abs().sum() > 0
    assert model.refiner.activation_proj.weight.grad.abs().sum() > 0
    assert model.sem_seg_head.training and model.tracker.training  # modes restored


def test_rcp_and_sim_add_losses_and_gradients():
    model = FakeModel(sim=True, rcp=True).train()
    images, targets = _batch()
    losses = compute_losses(model, images, targets, clip_len=T)
    assert {"loss_preserve", "loss_contrast"} <= set(losses)
    assert losses["loss_preserve"] > 0 and losses["loss_contrast"] > 0
    sum(losses.values()).backward()
    assert model.refiner.rcp.compensator.alpha.grad is not None
    assert model.refiner.sim.gate.grad is not None and model.refiner.sim.gate.grad.abs() > 0


def test_matched_presence_marks_only_present_frames_of_matched_slots():
    targets = [{"present": torch.tensor([[True, False, True], [False, True, True]])}]
    valid = matched_presence([(torch.tensor([3, 0]), torch.tensor([0, 1]))], targets, num_frames=3, num_queries=4)
    assert valid.shape == (1, 3, 4)
    assert valid[0, :, 3].tolist() == [True, False, True] and valid[0, :, 0].tolist() == [False, True, True]
    assert not valid[0, :, 1:3].any()
