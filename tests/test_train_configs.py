"""The shipped configs load strictly, chain their stages, and keep the official R50 hyper-parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spvis.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = {
    "synth": ("segmenter.yaml", "tracker.yaml", "refiner.yaml"),
    "ytvis19": ("segmenter_R50.yaml", "dvis_online_R50.yaml", "dvis_offline_R50.yaml"),
    "ovis": ("segmenter_R50.yaml", "dvis_online_R50.yaml", "dvis_offline_R50.yaml"),
}


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_config_loads(path):
    cfg = load_config(path)
    assert cfg.SOLVER.IMS_PER_BATCH % cfg.SOLVER.CLIPS_PER_DEVICE == 0


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_stages_chain_weights(recipe):
    cfgs = [load_config(CONFIGS / recipe / name) for name in RECIPES[recipe]]
    assert [c.STAGE for c in cfgs] == ["segmenter", "tracker", "refiner"]
    assert cfgs[0].MODEL.WEIGHTS == ""
    for previous, current in zip(cfgs, cfgs[1:]):
        # the final weights, or (synth) the iteration the recipe ships, exported by `spvis checkpoint export`
        assert re.fullmatch(re.escape(previous.OUTPUT_DIR) + r"/model_(final|\d{7})\.safetensors", current.MODEL.WEIGHTS)
    assert cfgs[2].MODEL.REFINER.ENABLED and cfgs[2].TEST.MODE == "offline" and cfgs[2].INPUT.REVERSE_AGU


@pytest.mark.parametrize("recipe,iters", [("ytvis19", (20000, 40000, 40000)), ("ovis", (20000, 20000, 20000))])
def test_r50_recipes_keep_official_hyper_parameters(recipe, iters):
    cfgs = [load_config(CONFIGS / recipe / name) for name in RECIPES[recipe]]
    for cfg, max_iter in zip(cfgs, iters):
        s = cfg.SOLVER
        assert (s.BASE_LR, s.WEIGHT_DECAY, s.BACKBONE_MULTIPLIER, s.CLIP_GRAD_NORM) == (1e-4, 0.05, 0.1, 0.01)
        assert (s.IMS_PER_BATCH, s.WARMUP_ITERS, s.GAMMA, s.MAX_ITER) == (8, 10, 0.1, max_iter)
        assert s.STEPS == [int(max_iter * 0.7)]
        assert cfg.MODEL.DECODER.NUM_QUERIES == 100 and cfg.MODEL.DECODER.DEC_LAYERS == 9
    assert [c.INPUT.SAMPLING_FRAME_NUM for c in cfgs] == [1, 5, 21]
    assert cfgs[0].MODEL.NUM_CLASSES == (40 if recipe == "ytvis19" else 25)
    assert cfgs[0].TEST.MAX_NUM == (10 if recipe == "ytvis19" else 20)


@pytest.mark.parametrize("recipe", ["ytvis19", "ovis"])
def test_swin_l_recipes_chain_and_match_the_official_architecture(recipe):
    names = ("segmenter_SwinL.yaml", "dvis_online_SwinL.yaml", "dvis_offline_SwinL.yaml")
    cfgs = [load_config(CONFIGS / recipe / name) for name in names]
    assert [c.STAGE for c in cfgs] == ["segmenter", "tracker", "refiner"]
    for previous, current in zip(cfgs, cfgs[1:]):
        assert current.MODEL.WEIGHTS == f"{previous.OUTPUT_DIR}/model_final.safetensors"
        assert "SwinL" in current.OUTPUT_DIR
    swin = cfgs[0].MODEL.BACKBONE.SWIN
    assert cfgs[0].MODEL.BACKBONE.NAME == "swin"
    assert (swin.EMBED_DIM, swin.DEPTHS, swin.NUM_HEADS, swin.WINDOW_SIZE) == (192, [2, 2, 18, 2], [6, 12, 24, 48], 12)
    assert cfgs[0].MODEL.DECODER.NUM_QUERIES == 200 and cfgs[0].INPUT.MIN_SIZE_TEST == 480
    assert cfgs[0].MODEL.NUM_CLASSES == (40 if recipe == "ytvis19" else 25)


def test_ytvis21_recipe_uses_the_2021_data():
    cfgs = [load_config(CONFIGS / "ytvis21" / name) for name in RECIPES["ytvis19"]]
    assert all(c.DATASETS.TRAIN == ["coco2ytvis2021_train", "ytvis_2021_train"] for c in cfgs)
    assert cfgs[2].MODEL.WEIGHTS == f"{cfgs[1].OUTPUT_DIR}/model_final.safetensors" and "ytvis21" in cfgs[2].OUTPUT_DIR
