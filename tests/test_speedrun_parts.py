"""The training-speedrun parts: fresh synthetic clips on the fly, the cosine schedule, weight EMA, the stride-2
mask level and snapping tracks to the segmenter's predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spvis.config import get_cfg
from spvis.data.synth_plan import plan_video
from spvis.data.synth_render import render_video
from spvis.data.synth_stream import PRESETS, SynthClipDataset, parse_stream_name
from spvis.engine import checkpointing as ckpt
from spvis.engine.ema import WeightEMA
from spvis.engine.schedule import lr_factor
from spvis.errors import ConfigError
from test_train_fakes import run_fake_training, tiny_cfg


# ------------------------------------------------------------------ synthetic stream
def _stream(name="synth:target", **kw) -> SynthClipDataset:
    return SynthClipDataset(parse_stream_name(name), name=name, min_sizes=[96], max_size=128, **kw)


def test_stream_items_are_pure_functions_of_seed_and_index():
    ds = _stream(flip=True)
    a, b, c = ds[7], ds[7], ds[8]
    assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["masks"], b["masks"])
    assert not torch.equal(a["frames"], c["frames"])
    other_seed = SynthClipDataset(parse_stream_name("synth:target"), min_sizes=[96], max_size=128, seed=1)[7]
    assert not torch.equal(a["frames"], other_seed["frames"])
    # a loader worker computes the same item as the main process
    loader = torch.utils.data.DataLoader(ds, batch_size=None, sampler=[7], num_workers=1)
    assert torch.equal(next(iter(loader))["masks"], a["masks"])


def test_stream_item_layout_and_masks_match_the_painted_objects():
    ds = _stream(frame_num=3, frame_range=2)
    item = ds[3]
    t, n = item["masks"].shape[:2]
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (3, 3, 96, 128)
    assert item["masks"].dtype == torch.bool and t == 3 and n == len(item["labels"]) == len(item["ids"]) >= 1
    assert item["present"].shape == (3, n) and bool(item["present"].any(0).all())
    assert int(item["labels"].max()) < 6 and len(set(item["ids"].tolist())) == n
    # visible masks of one frame never overlap (depth order) and the objects differ from the background
    assert int(item["masks"][0].sum(0).max()) <= 1


def test_stream_frames_equal_the_written_benchmark_of_the_same_video():
    """paint_frame is the same renderer as `spvis synth`: a planned video's frames equal render_video's."""
    spec = PRESETS["target"]
    kwargs = dict(frames=8, height=64, width=96, categories=6, max_objects=4, occlusion="heavy", frame_stride=2)
    images, tracks, _ = render_video(np.random.default_rng([5, 0]), **kwargs)
    from spvis.data.synth_render import paint_frame

    scene = plan_video(np.random.default_rng([5, 0]), **kwargs)
    for f in (0, 3, 7):
        assert np.array_equal(paint_frame(scene, f)[0], images[f])
    assert spec.frames == 60 and spec.frame_stride == 2 and spec.occlusion == "heavy"


@pytest.mark.parametrize("name, match", [
    ("synth:nope", "unknown synthetic stream"),
    ("synth:target,frame_stride=x", "frame_stride must be an integer"),
    ("synth:target,speed=3", "key=value"),
    ("synth:idhard,max_objects=2", "max_objects >= 3"),
])
def test_stream_name_errors_are_one_line(name, match):
    with pytest.raises(ConfigError, match=match):
        parse_stream_name(name)


def test_stream_override_and_mixture_train(tmp_path):
    assert parse_stream_name("synth:target,frame_stride=3").frame_stride == 3
    cfg = tiny_cfg(Path("unused.json"), tmp_path, MAX_ITER=2)
    cfg.DATASETS.TRAIN = ["synth:target,height=64,width=64", "synth:idhard,height=64,width=64"]
    cfg.DATASETS.RATIO = [3, 1]
    _, result = run_fake_training(cfg)
    assert result.iteration == 2 and (tmp_path / "model_final.safetensors").is_file()


# ------------------------------------------------------------------ schedule and EMA
def test_cosine_schedule_reaches_zero_at_max_iter():
    kw = dict(max_iter=100, kind="cosine", warmup_iters=10, warmup_factor=0.0)
    assert lr_factor(0, **kw) == 0.0
    assert lr_factor(50, **kw) == pytest.approx(0.5)
    assert lr_factor(25, **kw) == pytest.approx(0.5 * (1 + np.cos(np.pi / 4)))
    assert lr_factor(100, **kw) == pytest.approx(0.0, abs=1e-12)


def test_weight_ema_averages_and_swaps_back():
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = WeightEMA(net, decay=0.5)
    for value in (1.0, 1.0):
        with torch.no_grad():
            net.weight.fill_(value)
        ema.update(net)
    # warm-up decays min(0.5, 1/10) then min(0.5, 2/11): 0 -> 0.9 -> 0.9 + (1 - 2/11) * 0.1
    assert float(ema.state["weight"][0, 0]) == pytest.approx(0.9 + (1 - 2 / 11) * 0.1)
    with ema.swapped_into(net):
        assert float(net.weight[0, 0].detach()) == pytest.approx(float(ema.state["weight"][0, 0]))
    assert float(net.weight[0, 0].detach()) == 1.0


def test_ema_is_what_model_final_and_exports_hold_and_resume_keeps_it(tmp_path):
    cfg = tiny_cfg(Path(__file__).parent / "unused.json", tmp_path / "full", MAX_ITER=4, EMA_DECAY=0.9)
    cfg.DATASETS.TRAIN = ["synth:target,height=64,width=64"]
    trainer, _ = run_fake_training(cfg)
    from spvis.checkpoints.io import read_safetensors

    final = read_safetensors(tmp_path / "full" / "model_final.safetensors")
    assert all(torch.equal(final[k], trainer.ema.state[k]) for k in final)
    assert not all(torch.equal(final[k], trainer.model.state_dict()[k]) for k in final)
    data = torch.load(ckpt.find_last_checkpoint(tmp_path / "full"), weights_only=True)
    assert all(torch.equal(ckpt.inference_state(data)[k], trainer.ema.state[k]) for k in final)
    # stop after 2 steps and resume: the EMA continues exactly
    cut = tiny_cfg(Path("unused.json"), tmp_path / "cut", MAX_ITER=4, EMA_DECAY=0.9)
    cut.DATASETS.TRAIN = cfg.DATASETS.TRAIN
    run_fake_training(cut, sigterm_at_call=3)
    resumed, _ = run_fake_training(cut, resume=True)
    assert resumed.ema.updates == 4
    assert all(torch.equal(resumed.ema.state[k], trainer.ema.state[k]) for k in final)


# ------------------------------------------------------------------ stride-2 mask features
def _tiny_segmenter_cfg(*overrides: str):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.NUM_CLASSES = 3
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WIDTH = "tiny", 8
    cfg.MODEL.PIXEL_DECODER.CONV_DIM = cfg.MODEL.PIXEL_DECODER.MASK_DIM = 32
    cfg.MODEL.PIXEL_DECODER.ENC_LAYERS, cfg.MODEL.PIXEL_DECODER.NHEADS = 1, 4
    cfg.MODEL.DECODER.HIDDEN_DIM, cfg.MODEL.DECODER.NUM_QUERIES, cfg.MODEL.DECODER.DEC_LAYERS = 32, 4, 2
    cfg.MODEL.DECODER.NHEADS, cfg.MODEL.DECODER.DIM_FEEDFORWARD = 4, 64
    cfg.MODEL.TRACKER.ENABLED = False
    cfg.merge_overrides(list(overrides))
    return cfg


def test_stride_two_mask_features_start_as_upsampled_stride_four():
    from spvis.modeling.meta_arch import SPVISModel

    levels = "[res1,res2,res3,res4,res5]"
    fine = SPVISModel.from_config(_tiny_segmenter_cfg(
        f"MODEL.BACKBONE.OUT_FEATURES={levels}", f"MODEL.PIXEL_DECODER.IN_FEATURES={levels}",
        "MODEL.PIXEL_DECODER.COMMON_STRIDE=2")).eval()
    torch.manual_seed(0)
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        out = fine.segment(images)
        assert out["mask_features"].shape[-2:] == (32, 48) and out["pred_masks"].shape[-2:] == (32, 48)
        decoder = fine.sem_seg_head.pixel_decoder
        features = fine.backbone(images)
        assert "res1" in features and features["res1"].shape[-2:] == (32, 48)
        decoder.fine_lateral.weight.fill_(0.5)  # the fine level adds the stride-2 pixels once it learns
        assert not torch.allclose(decoder(features)[0], out["mask_features"])


def test_stride_two_level_is_refused_for_other_backbones():
    from spvis.modeling.backbone import build_backbone

    cfg = _tiny_segmenter_cfg("MODEL.BACKBONE.NAME=resnet", "MODEL.BACKBONE.OUT_FEATURES=[res1,res2]")
    with pytest.raises(ConfigError, match="res1"):
        build_backbone(cfg)


# ------------------------------------------------------------------ snapping tracks to the segmenter
def test_snap_replaces_matched_slots_only():
    from spvis.modeling.pgt.snap import snap_to_segmenter

    track_masks = -torch.ones(1, 3, 8, 8)
    track_masks[0, 0, :4, :4] = 1  # slot 0: top-left square
    track_masks[0, 1, 4:, 4:] = 1  # slot 1: bottom-right square
    seg_masks = -torch.ones(1, 3, 8, 8)
    seg_masks[0, 2, :4, :3] = 2  # query 2 overlaps slot 0 with IoU 0.75
    seg_masks[0, 0, 6:, 6:] = 2  # query 0 overlaps slot 1 with IoU 0.25
    track = {"pred_logits": torch.zeros(1, 3, 4), "pred_masks": track_masks, "track_ids": torch.arange(3)[None]}
    seg = {"pred_logits": torch.arange(12.0).view(1, 3, 4), "pred_masks": seg_masks}
    out = snap_to_segmenter(track, seg, 0.5)
    assert torch.equal(out["pred_masks"][0, 0], seg_masks[0, 2]) and torch.equal(out["pred_logits"][0, 0],
                                                                                  seg["pred_logits"][0, 2])
    assert torch.equal(out["pred_masks"][0, 1], track_masks[0, 1]) and torch.equal(out["pred_logits"][0, 1:],
                                                                                   torch.zeros(2, 4))
    assert out["track_ids"] is track["track_ids"]
    assert snap_to_segmenter(track, seg, 0.0) is track
