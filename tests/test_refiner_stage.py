"""Refiner training stage: frozen segmenter/tracker, refiner-only gradients, RCP/SIM switches add their losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spvis.config import get_cfg
from spvis.modeling.rcp import VideoRefinementCompensator
from spvis.modeling.refiner import TemporalRefiner
from spvis.modeling.sim import SpatialInteractionModule
from spvis.modeling.stages.refiner_stage import RefinerCriterion, matched_presence

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
        self.classify = nn.Linear(C, K + 1)

    def forward(self, embeds, features):  # (B, T, Q, C), (B, T, Cm, h, w)
        out = torch.tanh(self.mix(embeds))
        return {"pred_embds": out, "pred_masks": torch.einsum("btqc,btchw->bqthw", out, features),
                "pred_logits": self.classify(out)}, None

    def frame_forward(self, embeds):
        return torch.tanh(self.mix(embeds) + embeds)


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
        self.cfg = get_cfg()
        self.cfg.MODEL.NUM_CLASSES = K
        self.cfg.MODEL.REFINER.DECODER_LAYERS = 2
        self.cfg.MODEL.LOSS.TRAIN_NUM_POINTS = 64
        for part in (self.sem_seg_head, self.tracker):
            part.requires_grad_(False)

    def segment(self, images):
        return self.sem_seg_head(images)


def compute_losses(model, images, targets, clip_len, iteration=0, max_iter=1):
    """One refiner-stage loss forward with the criterion built from the fake model's config."""
    return RefinerCriterion.from_config(model.cfg)(model, images, targets, clip_len, iteration, max_iter)


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
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0", "loss_dice_0"}
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


def test_video_level_criterion_uses_points_times_frames():
    model = FakeModel()
    images, targets = _batch()
    keys, attributes = set(model.state_dict()), set(vars(model))
    stage_criterion = RefinerCriterion.from_config(model.cfg)
    stage_criterion(model, images, targets, T, iteration=0, max_iter=1)
    criterion = stage_criterion.set_criterion(T)
    assert criterion.num_points == 64 * T and criterion.matcher.num_points == 64 * T
    assert stage_criterion.set_criterion(2 * T).num_points == 64 * 2 * T  # one per clip length
    assert set(model.state_dict()) == keys and set(vars(model)) == attributes  # nothing kept on the model


def test_real_model_refiner_stage_with_sim_and_rcp():
    """SPVISModel (tiny backbone) dispatches STAGE=refiner here; only the refiner receives gradients."""
    from spvis.modeling.meta_arch import SPVISModel

    cfg = get_cfg()
    cfg.STAGE = "refiner"
    cfg.MODEL.NUM_CLASSES = 3
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WIDTH = "tiny", 8
    cfg.MODEL.PIXEL_DECODER.CONV_DIM = cfg.MODEL.PIXEL_DECODER.MASK_DIM = 32
    cfg.MODEL.PIXEL_DECODER.ENC_LAYERS, cfg.MODEL.PIXEL_DECODER.ENC_FFN = 1, 64
    cfg.MODEL.PIXEL_DECODER.NHEADS = 4
    cfg.MODEL.DECODER.HIDDEN_DIM, cfg.MODEL.DECODER.NUM_QUERIES = 32, 6
    cfg.MODEL.DECODER.NHEADS, cfg.MODEL.DECODER.DIM_FEEDFORWARD, cfg.MODEL.DECODER.DEC_LAYERS = 4, 64, 2
    cfg.MODEL.TRACKER.DECODER_LAYERS = cfg.MODEL.REFINER.DECODER_LAYERS = 2
    cfg.MODEL.REFINER.ENABLED = cfg.MODEL.REFINER.SIM = cfg.MODEL.REFINER.RCP = True
    cfg.MODEL.LOSS.TRAIN_NUM_POINTS = 64
    torch.manual_seed(0)
    model = SPVISModel.from_config(cfg).train()
    clip = {"frames": torch.randint(0, 255, (3, 3, 64, 64), dtype=torch.uint8),
            "masks": torch.zeros(3, 2, 64, 64, dtype=torch.bool), "labels": torch.tensor([0, 2]),
            "ids": torch.tensor([5, 7]), "present": torch.tensor([[True, True], [True, False], [True, True]])}
    clip["masks"][:, 0, 10:30, 10:30] = True
    clip["masks"][[0, 2], 1, 40:60, 5:25] = True
    losses = model([clip, clip])
    assert {"loss_ce", "loss_dice_0", "loss_preserve", "loss_contrast"} <= set(losses)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.sem_seg_head.parameters())
    assert all(p.grad is None for p in model.tracker.parameters())
    assert model.refiner.mask_embed.layers[0].weight.grad.abs().sum() > 0
