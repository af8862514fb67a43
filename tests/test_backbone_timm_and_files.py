"""A timm backbone through MODEL.BACKBONE.NAME=timm:<model>, its pretrained loading, and file permissions."""

import os
import stat

import pytest
import torch

from spvis.checkpoints.pretrained import load_pretrained_backbone
from spvis.config import get_cfg
from spvis.errors import ConfigError
from spvis.modeling.backbone import build_backbone
from spvis.utils.atomic_io import atomic_write_text


def _cfg(name):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = name
    return cfg


def test_timm_backbone_publishes_four_levels_at_strides_4_to_32():
    backbone = build_backbone(_cfg("timm:resnet18"))
    shapes = backbone.output_shape()
    assert [shapes[k].stride for k in ("res2", "res3", "res4", "res5")] == [4, 8, 16, 32]
    out = backbone(torch.zeros(1, 3, 64, 96))
    assert out["res2"].shape == (1, shapes["res2"].channels, 16, 24) and out["res5"].shape[-2:] == (2, 3)


def test_timm_backbone_loads_a_timm_checkpoint_by_name(tmp_path):
    import timm

    source = timm.create_model("resnet18", pretrained=False)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    backbone = build_backbone(_cfg("timm:resnet18"))
    load_pretrained_backbone(backbone, tmp_path / "r18.pth", kind="timm:resnet18")
    torch.testing.assert_close(backbone.body.state_dict()["layer1.0.conv1.weight"],
                               source.state_dict()["layer1.0.conv1.weight"])


def test_unknown_timm_model_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME: timm has no model"):
        build_backbone(_cfg("timm:not_a_model_xyz"))


def test_atomic_files_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
