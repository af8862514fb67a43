"""Segmenter: official key names/shapes, output contract, preprocessing, matcher, losses, per-frame training."""

from __future__ import annotations

import pytest
import torch

from spvis.config import get_cfg
from spvis.errors import ConfigError
from spvis.modeling.backbone import ResNet, SwinBackbone, build_backbone
from spvis.modeling.criterion import SetCriterion
from spvis.modeling.mask_former_head import MaskFormerHead
from spvis.modeling.matcher import HungarianMatcher
from spvis.modeling.meta_arch import SPVISModel
from spvis.modeling.preprocessing import normalize_and_pad


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors gain nothing from threads, and a busy 2-core machine makes thread hand-off very slow."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_cfg(**overrides):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "tiny"
    cfg.MODEL.BACKBONE.WIDTH = 8
    pd, dec = cfg.MODEL.PIXEL_DECODER, cfg.MODEL.DECODER
    pd.CONV_DIM = pd.MASK_DIM = 32
    pd.ENC_LAYERS, pd.ENC_FFN, pd.NHEADS, pd.NPOINTS = 1, 64, 4, 2
    dec.HIDDEN_DIM, dec.NUM_QUERIES, dec.DEC_LAYERS, dec.DIM_FEEDFORWARD, dec.NHEADS = 32, 5, 3, 64, 4
    cfg.MODEL.NUM_CLASSES = 3
    cfg.MODEL.TRACKER.ENABLED = False
    cfg.MODEL.LOSS.TRAIN_NUM_POINTS = 196
    for key, value in overrides.items():
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return cfg


def _official_keys(path) -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in path.read_text().splitlines():
        name, shape = line.split(" ", 1)
        keys[name] = tuple(int(v) for v in shape.strip("[]").split(",") if v)
    return keys


def test_r50_segmenter_has_official_keys_and_shapes(test_data_dir):
    official = _official_keys(test_data_dir / "dvis_state_dict_keys" / "online.txt")
    official = {k: v for k, v in official.items() if k.startswith(("backbone.", "sem_seg_head."))}
    cfg = get_cfg()  # defaults = official R50: 100 queries, 256-d, 9 layers, 40 classes
    backbone = build_backbone(cfg)
    head = MaskFormerHead.from_config(cfg, backbone.output_shape())
    ours = {f"backbone.{k}": tuple(v.shape) for k, v in backbone.state_dict().items()}
    ours.update({f"sem_seg_head.{k}": tuple(v.shape) for k, v in head.state_dict().items()})
    assert sorted(set(official) - set(ours)) == []
    assert sorted(set(ours) - set(official)) == []
    assert {k: v for k, v in ours.items() if official[k] != v} == {}


def test_resnet_stride_rule_and_freeze():
    r50 = ResNet(depth=50, stride_in_1x1=True, freeze_at=2)
    assert r50.res3[0].conv1.stride == (2, 2) and r50.res3[0].conv2.stride == (1, 1)
    r50 = ResNet(depth=50, stride_in_1x1=False, freeze_at=2)
    assert r50.res3[0].conv1.stride == (1, 1) and r50.res3[0].conv2.stride == (2, 2)
    assert not any(p.requires_grad for p in r50.res2.parameters())
    assert not any(p.requires_grad for p in r50.stem.parameters())
    with pytest.raises(ConfigError, match="DEPTH"):
        ResNet(depth=42)
    out = ResNet(depth=18, res2_channels=64)(torch.randn(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "res2": (1, 64, 16, 24), "res3": (1, 128, 8, 12), "res4": (1, 256, 4, 6), "res5": (1, 512, 2, 3)}


def test_swin_backbone_levels_and_official_key_names():
    swin = SwinBackbone(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 4), window_size=4)
    out = swin(torch.randn(1, 3, 70, 90))  # not a multiple of the patch or window size
    assert [tuple(v.shape[1:2]) for v in out.values()] == [(24,), (48,), (96,), (192,)]
    assert out["res2"].shape[-2:] == (18, 23) and out["res5"].shape[-2:] == (3, 3)
    keys = set(swin.state_dict())
    assert {"patch_embed.proj.weight", "layers.0.blocks.0.attn.qkv.weight", "layers.1.downsample.reduction.weight",
            "norm3.weight"} <= keys


def test_head_output_contract():
    cfg = tiny_cfg()
    model = SPVISModel.from_config(cfg).eval()
    assert model.tracker is None and model.refiner is None
    images = model.preprocess(torch.randint(0, 255, (2, 3, 50, 70), dtype=torch.uint8))
    assert images.shape == (2, 3, 64, 96)
    with torch.no_grad():
        out = model.segment(images)
    assert out["pred_logits"].shape == (2, 5, 4)
    assert out["pred_masks"].shape == (2, 5, 16, 24)
    assert out["pred_embds"].shape == (2, 5, 32)
    assert out["mask_features"].shape == (2, 32, 16, 24)
    assert len(out["aux_outputs"]) == 3  # initial prediction + 2 intermediate layers
    # frames are independent: one frame alone gives the same result
    with torch.no_grad():
        single = model.segment(images[1:])
    torch.testing.assert_close(single["pred_masks"][0], out["pred_masks"][1], atol=1e-4, rtol=1e-4)
    # pred_embds is decoder_norm of the last layer: unit-variance rows up to the LayerNorm affine
    norm = model.sem_seg_head.predictor.decoder_norm
    centred = (out["pred_embds"] - norm.bias) / norm.weight
    torch.testing.assert_close(centred.mean(-1), torch.zeros(2, 5), atol=1e-4, rtol=0)


def test_preprocessing_normalises_then_pads_with_zero():
    mean, std = torch.tensor([10.0, 20.0, 30.0]), torch.tensor([2.0, 4.0, 5.0])
    images = torch.full((1, 3, 5, 7), 40, dtype=torch.uint8)
    out = normalize_and_pad(images, mean, std, 4)
    assert out.shape == (1, 3, 8, 8)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([15.0, 5.0, 2.0]))
    assert out[:, :, 5:, :].abs().sum() == 0 and out[:, :, :, 7:].abs().sum() == 0


def test_matcher_picks_the_obvious_assignment():
    # query 2 predicts target 0 (class 1, left half); query 0 predicts target 1 (class 0, right half)
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, 0, :, :4] = 1
    masks[1, 0, :, 4:] = 1
    pred_masks = torch.full((1, 3, 1, 8, 8), -10.0)
    pred_masks[0, 2, 0, :, :4] = 10
    pred_masks[0, 0, 0, :, 4:] = 10
    logits = torch.full((1, 3, 3), -5.0)
    logits[0, 2, 1] = 5
    logits[0, 0, 0] = 5
    targets = [{"labels": torch.tensor([1, 0]), "masks": masks}]
    pred_idx, tgt_idx = HungarianMatcher(num_points=64)({"pred_logits": logits, "pred_masks": pred_masks}, targets)[0]
    assert dict(zip(tgt_idx.tolist(), pred_idx.tolist())) == {0: 2, 1: 0}
    empty = HungarianMatcher(num_points=16)({"pred_logits": logits, "pred_masks": pred_masks},
                                             [{"labels": torch.zeros(0, dtype=torch.long), "masks": masks[:0]}])
    assert empty[0][0].numel() == 0


def test_criterion_is_lower_for_the_right_prediction():
    masks = torch.zeros(1, 2, 8, 8)
    masks[0, :, 2:6, 2:6] = 1
    targets = [{"labels": torch.tensor([1]), "masks": masks}]
    criterion = SetCriterion(2, HungarianMatcher(num_points=64), num_points=64, deep_supervision=False)
    good_masks = (masks * 20 - 10).unsqueeze(0).expand(1, 2, 2, 8, 8).clone()
    good_logits = torch.tensor([[[-5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]]])
    good = criterion({"pred_logits": good_logits, "pred_masks": good_masks}, targets)
    bad = criterion({"pred_logits": -good_logits, "pred_masks": -good_masks}, targets)
    # importance sampling puts most points on the mask border (logit ~0 after interpolation), so even a
    # perfect mask keeps some BCE; the wrong prediction must still cost clearly more
    assert good["loss_ce"] < 0.01 < 0.5 < bad["loss_ce"]
    for key in ("loss_mask", "loss_dice"):
        assert 2 * good[key] < bad[key]
    fixed = criterion({"pred_logits": good_logits, "pred_masks": good_masks}, targets,
                      indices=[(torch.tensor([1]), torch.tensor([0]))])
    assert fixed["loss_ce"] > good["loss_ce"]  # forcing the wrong query costs class loss


def _toy_clip():
    frames = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    frames[:, 0, 8:28, 8:28] = 250
    frames[:, 2, 36:60, 32:60] = 250
    masks = torch.zeros(1, 2, 64, 64, dtype=torch.bool)
    masks[:, 0, 8:28, 8:28] = True
    masks[:, 1, 36:60, 32:60] = True
    return {"frames": frames, "masks": masks, "labels": torch.tensor([0, 2]), "ids": torch.tensor([1, 2]),
            "present": torch.ones(1, 2, dtype=torch.bool)}


def test_per_frame_training_reduces_the_loss():
    torch.manual_seed(0)
    model = SPVISModel.from_config(tiny_cfg())
    clip = _toy_clip()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(12):
        losses = model([clip])
        assert "loss_ce" in losses and "loss_dice_0" in losses
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert history[-1] < 0.6 * history[0]


def test_unknown_stage_and_refiner_without_tracker_are_config_errors():
    cfg = tiny_cfg()
    cfg.MODEL.REFINER.ENABLED = True
    with pytest.raises(ConfigError, match="TRACKER"):
        SPVISModel.from_config(cfg)


def test_dvis_plus_reid_branch_appends_reid_embeddings():
    cfg = tiny_cfg()
    cfg.MODEL.DECODER.REID_BRANCH = True
    model = SPVISModel.from_config(cfg).eval()
    keys = set(model.state_dict())
    assert {"sem_seg_head.predictor.reid_embed.layers.0.weight", "sem_seg_head.predictor.reid_embed.layers.2.bias"} <= keys
    with torch.no_grad():
        out = model.segment(model.preprocess(torch.zeros(1, 3, 64, 64, dtype=torch.uint8)))
    assert out["pred_embds"].shape == (1, 5, 64) and out["pred_reid_embed"].shape == (1, 5, 32)
    torch.testing.assert_close(out["pred_embds"][..., 32:], out["pred_reid_embed"])
    torch.testing.assert_close(out["pred_embds_without_norm"][..., 32:], out["pred_reid_embed"])
