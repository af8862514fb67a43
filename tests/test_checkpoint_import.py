"""Checkpoint import: safe unpickling, key maps, strict loading reports, our safetensors format."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from spvis.checkpoints.io import load_weights, load_weights_into, save_weights
from spvis.checkpoints.keymaps import backbone_state_from_file, official_to_ours
from spvis.checkpoints.loading import load_state_strict
from spvis.checkpoints.official_config import official_to_cfg
from spvis.checkpoints.unpickler import read_state_dict
from spvis.cli.main import main
from spvis.errors import CheckpointError, ConfigError
from spvis.modeling.backbone import ResNet
from spvis.modeling.meta_arch import SPVISModel
from spvis.config import get_cfg


def tiny_cfg():
    """A few-thousand-parameter segmenter config (tiny CNN backbone, 1 encoder layer, 3 decoder layers)."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WIDTH = "tiny", 8
    pd, dec = cfg.MODEL.PIXEL_DECODER, cfg.MODEL.DECODER
    pd.CONV_DIM = pd.MASK_DIM = 32
    pd.ENC_LAYERS, pd.ENC_FFN, pd.NHEADS, pd.NPOINTS = 1, 64, 4, 2
    dec.HIDDEN_DIM, dec.NUM_QUERIES, dec.DEC_LAYERS, dec.DIM_FEEDFORWARD, dec.NHEADS = 32, 5, 3, 64, 4
    cfg.MODEL.NUM_CLASSES = 3
    cfg.MODEL.TRACKER.ENABLED = False
    return cfg


class Exploit:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pkl_of_numpy_arrays_loads(tmp_path):
    path = tmp_path / "weights.pkl"
    payload = {"model": OrderedDict(a=np.arange(6, dtype=np.float32).reshape(2, 3), b=np.ones(2)),
               "__author__": "x"}
    payload.pop("__author__")
    path.write_bytes(pickle.dumps(payload))
    state = read_state_dict(path)
    assert set(state) == {"a", "b"} and state["a"].shape == (2, 3)


def test_pkl_with_code_is_refused_by_name(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": Exploit()}}))
    with pytest.raises(CheckpointError, match=r"evil\.pkl: refused to unpickle (posix|os|nt)\.system"):
        read_state_dict(path)


def test_pth_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        torch.save({"model": {"w": Exploit()}}, handle)
    with pytest.raises(CheckpointError, match=r"evil\.pth: torch\.load\(weights_only=True\)"):
        read_state_dict(path)


def test_official_key_renames():
    state = {"offline_tracker.decoder_norm.weight": torch.ones(1), "criterion.empty_weight": torch.ones(3),
             "sem_seg_head.predictor.static_query.weight": torch.ones(2, 2),
             "backbone.layers.0.downsample.reduction.weight": torch.ones(1),
             "backbone.layers.0.blocks.0.attn.relative_position_index": torch.ones(1)}
    ours, dropped = official_to_ours(state, backbone="swin")
    assert set(ours) == {"refiner.decoder_norm.weight", "sem_seg_head.predictor.query_feat.weight",
                         "backbone.layers.1.downsample.reduction.weight"}
    assert set(dropped) == {"criterion.empty_weight", "backbone.layers.0.blocks.0.attn.relative_position_index"}


def test_torchvision_resnet_file_loads_into_detectron2_layout(tmp_path):
    import torchvision

    tv = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(tv.state_dict(), path)
    ours = ResNet(depth=18, res2_channels=64)
    load_state_strict(ours, backbone_state_from_file(path, kind="resnet"), source=str(path))
    torch.testing.assert_close(ours.res3[0].shortcut.weight, tv.layer2[0].downsample[0].weight)
    torch.testing.assert_close(ours.stem.conv1.norm.running_var, tv.bn1.running_var)


def test_strict_loading_names_missing_unexpected_and_misshaped():
    model = ResNet(depth=18, res2_channels=64)
    state = dict(model.state_dict())
    state.pop("res2.0.conv1.weight")
    state["res9.0.conv1.weight"] = torch.ones(1)
    state["stem.conv1.weight"] = torch.ones(3, 3)
    with pytest.raises(CheckpointError) as info:
        load_state_strict(model, state, source="ckpt.pth")
    message = str(info.value)
    assert "ckpt.pth" in message and "res2.0.conv1.weight" in message and "res9.0.conv1.weight" in message
    assert "stem.conv1.weight (checkpoint [3, 3] vs model [64, 3, 7, 7])" in message


def test_wrong_config_for_checkpoint_fails_with_key_names(test_data_dir, tmp_path):
    bundle = test_data_dir / "dvis_official_tiny"
    text = (bundle / "config.yaml").read_text().replace("NUM_OBJECT_QUERIES: 20", "NUM_OBJECT_QUERIES: 25")
    config = tmp_path / "wrong.yaml"
    config.write_text(text)
    code = main(["checkpoint", "import", str(bundle / "checkpoint.pth"), "--format", "dvis",
                 "--official-config", str(config), "--out", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()


def test_official_config_translation(test_data_dir, tmp_path):
    cfg = official_to_cfg(test_data_dir / "dvis_official_tiny" / "config.yaml")
    assert cfg.MODEL.BACKBONE.DEPTH == 18 and cfg.MODEL.DECODER.DEC_LAYERS == 9  # official 10 = 9 + initial
    assert cfg.MODEL.DECODER.NUM_QUERIES == 20 and cfg.MODEL.NUM_CLASSES == 40
    assert cfg.MODEL.TRACKER.ENABLED and cfg.MODEL.REFINER.ENABLED and cfg.TEST.MODE == "offline"
    assert cfg.TEST.PANOPTIC.OBJECT_THRESHOLD == 0.8 and cfg.TEST.PANOPTIC.OVERLAP_THRESHOLD == 0.8
    vps = tmp_path / "vps.yaml"  # a VIPSeg config: 124 classes (58 things + 66 stuff), its own VPS thresholds
    vps.write_text((test_data_dir / "dvis_official_tiny" / "config.yaml").read_text()
                   .replace("NUM_CLASSES: 40", "NUM_CLASSES: 124").replace("OBJECT_MASK_THRESHOLD: 0.8",
                                                                           "OBJECT_MASK_THRESHOLD: 0.7")
                   .replace("TASK: vis", "TASK: vps"))
    cfg = official_to_cfg(vps)
    assert cfg.MODEL.NUM_CLASSES == 124 and cfg.TEST.PANOPTIC.OBJECT_THRESHOLD == 0.7
    bad = tmp_path / "bad.yaml"
    bad.write_text((test_data_dir / "dvis_official_tiny" / "config.yaml").read_text()
                   .replace("NAME: build_resnet_backbone", "NAME: D2VitAdapterDinoV2"))
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME 'D2VitAdapterDinoV2'"):
        official_to_cfg(bad)


def test_save_and_load_weights_roundtrip(tmp_path):
    cfg = tiny_cfg()
    model = SPVISModel.from_config(cfg)
    path = save_weights(tmp_path / "run" / "model.safetensors", model, cfg)
    state, loaded_cfg = load_weights(path)
    assert loaded_cfg.MODEL.DECODER.NUM_QUERIES == 5
    assert set(state) == set(model.state_dict()) and "pixel_mean" not in state
    other = SPVISModel.from_config(loaded_cfg)
    load_weights_into(other, path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[key], value)
    (tmp_path / "run" / "model.yaml").unlink()
    with pytest.raises(CheckpointError, match="model.yaml is missing"):
        load_weights(path)


def test_backbone_pretrained_from_local_file(tmp_path):
    """Building loads nothing; the loading step puts MODEL.BACKBONE.PRETRAINED into the backbone."""
    import torchvision

    from spvis.checkpoints.pretrained import load_pretrained
    from spvis.modeling.backbone import build_backbone

    tv = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(tv.state_dict(), path)
    cfg = tiny_cfg()
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.DEPTH, cfg.MODEL.BACKBONE.RES2_OUT_CHANNELS = "resnet", 18, 64
    cfg.MODEL.BACKBONE.PRETRAINED = str(path)
    assert not torch.equal(build_backbone(cfg).res5[1].conv2.weight, tv.layer4[1].conv2.weight)
    model = SPVISModel.from_config(cfg)
    assert load_pretrained(model, cfg)
    torch.testing.assert_close(model.backbone.res5[1].conv2.weight, tv.layer4[1].conv2.weight)
    cfg.MODEL.BACKBONE.PRETRAINED = str(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="missing.pth: MODEL.BACKBONE.PRETRAINED file not found"):
        load_pretrained(model, cfg)


def test_official_swin_key_layout_maps_onto_our_swin():
    """Official D2SwinTransformer names (reference §8) land exactly on our timm-based module tree."""
    from spvis.modeling.backbone import SwinBackbone

    depths, heads, window = (1, 1, 2, 1), (1, 2, 3, 4), 4
    ours = SwinBackbone(embed_dim=24, depths=depths, num_heads=heads, window_size=window).state_dict()
    official = {f"backbone.patch_embed.{m}.{p}": None for m in ("proj", "norm") for p in ("weight", "bias")}
    for stage, blocks in enumerate(depths):
        for block in range(blocks):
            prefix = f"backbone.layers.{stage}.blocks.{block}."
            for name in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
                official.update({prefix + name + ".weight": None, prefix + name + ".bias": None})
            official[prefix + "attn.relative_position_bias_table"] = None
            official[prefix + "attn.relative_position_index"] = None
        if stage < 3:
            official.update({f"backbone.layers.{stage}.downsample.{k}": None
                             for k in ("reduction.weight", "norm.weight", "norm.bias")})
        official.update({f"backbone.norm{stage}.{p}": None for p in ("weight", "bias")})
    mapped, dropped = official_to_ours({k: torch.zeros(1) for k in official}, backbone="swin")
    assert {k[len("backbone."):] for k in mapped} == set(ours)
    assert all(k.endswith("relative_position_index") for k in dropped)


def test_caffe2_resnet_pkl_names_convert(tmp_path):
    ours = ResNet(depth=50)
    c2 = {"conv1_w": np.zeros((64, 3, 7, 7), np.float32), "res_conv1_bn_s": np.full(64, 2.0, np.float32),
          "res_conv1_bn_b": np.zeros(64, np.float32), "pred_w": np.zeros((1000, 2048), np.float32)}
    for name, module in ours.named_modules():
        if name.startswith("res") and name.count(".") == 2 and hasattr(module, "weight"):
            stage, block, conv = name.split(".")
            branch = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "shortcut": "branch1"}[conv]
            base = f"{stage}_{block}_{branch}"
            c2[base + "_w"] = np.ones(tuple(module.weight.shape), np.float32)
            c2[base + "_bn_s"] = np.ones(module.weight.shape[0], np.float32)
            c2[base + "_bn_b"] = np.zeros(module.weight.shape[0], np.float32)
    path = tmp_path / "R-50.pkl"
    path.write_bytes(pickle.dumps({"blobs": None} | {"model": c2}))
    load_state_strict(ours, backbone_state_from_file(path, kind="resnet"), source=str(path))
    scale, _ = ours.stem.conv1.norm.scale_and_shift()
    torch.testing.assert_close(scale, torch.full((64,), 2.0))  # the C2 affine is applied exactly


def test_export_training_checkpoint_gives_the_same_tensors(tmp_path, capsys):
    """`spvis checkpoint export` turns model_*.pth into inference weights equal tensor by tensor."""
    from spvis.cli.main import main
    from spvis.engine.checkpointing import save_training_checkpoint

    cfg = tiny_cfg()
    model = SPVISModel.from_config(cfg)
    path = save_training_checkpoint(tmp_path, {"model": model.state_dict(), "optimizer": {}, "scheduler": {},
                                               "stage": "segmenter", "config": cfg.dump()}, iteration=7)
    assert main(["checkpoint", "export", str(path), "--out", str(tmp_path / "w.safetensors")]) == 0
    state, loaded_cfg = load_weights(tmp_path / "w.safetensors")
    assert loaded_cfg.MODEL.DECODER.NUM_QUERIES == cfg.MODEL.DECODER.NUM_QUERIES
    for key, value in model.state_dict().items():
        torch.testing.assert_close(state[key], value)
    broken = dict(torch.load(path, weights_only=True))
    broken["model"] = {k: v for k, v in broken["model"].items() if not k.endswith("class_embed.bias")}
    torch.save(broken, tmp_path / "broken.pth")
    capsys.readouterr()
    assert main(["checkpoint", "export", str(tmp_path / "broken.pth"), "--out", str(tmp_path / "b.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.pth" in err[0] and "class_embed.bias" in err[0]
    assert not (tmp_path / "b.safetensors").exists()


def test_pretrained_backbone_from_an_installed_package_file(tmp_path, monkeypatch):
    """MODEL.BACKBONE.PRETRAINED package:<module>/<file> reads a file shipped inside an installed package;
    a package that is not installed is one line naming the pip command."""
    from spvis.checkpoints.pretrained import resolve_pretrained_path

    package = tmp_path / "spvis_fake_weights_pkg"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "weights" / "w.pth").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_pretrained_path("package:spvis_fake_weights_pkg/weights/w.pth") == package / "weights" / "w.pth"
    assert resolve_pretrained_path("plain/file.pth") == Path("plain/file.pth")
    with pytest.raises(CheckpointError, match="package 'no_such_module_xyz' is not installed"):
        resolve_pretrained_path("package:no_such_module_xyz/w.pth")
