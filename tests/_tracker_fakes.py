"""Small fakes for tracker/inference tests: a deterministic tiny 'segmenter' around a real tracker."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spvis.config import get_cfg
from spvis.modeling.inference import OnlineInferenceMixin
from spvis.modeling.preprocessing import Preprocessor
from spvis.modeling.tracker import build_tracker

TINY = dict(Q=6, C=16, K=3)


def tiny_cfg(**pgt):
    """A config for a tiny tracker (C=16, Q=6, K=3) at a small test resolution."""
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = TINY["K"]
    cfg.MODEL.DECODER.HIDDEN_DIM = TINY["C"]
    cfg.MODEL.DECODER.NUM_QUERIES = TINY["Q"]
    cfg.MODEL.DECODER.NHEADS = 2
    cfg.MODEL.DECODER.DIM_FEEDFORWARD = 32
    cfg.MODEL.PIXEL_DECODER.MASK_DIM = TINY["C"]
    cfg.MODEL.TRACKER.DECODER_LAYERS = 2
    cfg.INPUT.MIN_SIZE_TEST = 48
    cfg.TEST.MAX_NUM = 4
    for key, value in pgt.items():
        setattr(cfg.MODEL.TRACKER.PGT, key, value)
    return cfg


class FakeSegmenterModel(OnlineInferenceMixin, nn.Module):
    """``segment(images)`` -> pred_embds from Q fixed image regions, mask_features from a 1x1 conv; the model's
    online inference (``init_state`` / ``track_frame``) comes from the mixin, as for SPVISModel."""

    def __init__(self, cfg):
        super().__init__()
        torch.manual_seed(0)
        channels, self.num_queries = cfg.MODEL.DECODER.HIDDEN_DIM, cfg.MODEL.DECODER.NUM_QUERIES
        self.pixel_proj = nn.Conv2d(3, channels, 1)
        self.query_proj = nn.Linear(channels, channels)
        self.class_proj = nn.Linear(channels, cfg.MODEL.NUM_CLASSES + 1)
        self.tracker = build_tracker(cfg)
        self.preprocessor = Preprocessor.from_config(cfg)

    def segment(self, images: torch.Tensor) -> dict:
        mask_features = self.pixel_proj(F.avg_pool2d(images, 4))  # (N, C, h, w)
        regions = F.adaptive_avg_pool2d(mask_features, (2, 3)).flatten(2).transpose(1, 2)  # (N, 6, C)
        embeds = F.layer_norm(self.query_proj(regions[:, : self.num_queries]), (regions.shape[-1],))
        return {"pred_embds": embeds, "mask_features": mask_features, "pred_logits": self.class_proj(embeds),
                "pred_masks": torch.einsum("nqc,nchw->nqhw", embeds, mask_features)}


@pytest.fixture(autouse=True)
def single_thread():
    """Run torch single-threaded: on the shared 2-core machine, 2 OpenMP threads spin against other jobs
    and small ops get ~50x slower. Restores the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
