"""``spvis demo`` end to end with a real (tiny, randomly initialised) SPVIS model saved as our weights."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from spvis.checkpoints import save_weights
from spvis.cli.main import main
from spvis.config import load_config
from spvis.modeling.meta_arch import SPVISModel

REPO = Path(__file__).resolve().parent.parent
TINY = ["MODEL.TRACKER.ENABLED=true", "MODEL.REFINER.ENABLED=true", "MODEL.DEVICE=cpu",
        "INPUT.MIN_SIZE_TEST=64", "INPUT.MAX_SIZE_TEST=96", "MODEL.DECODER.NUM_QUERIES=6",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.PIXEL_DECODER.CONV_DIM=32", "MODEL.PIXEL_DECODER.MASK_DIM=32",
        "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.TRACKER.DECODER_LAYERS=1", "MODEL.REFINER.DECODER_LAYERS=1",
        "TEST.MAX_NUM=4"]


@pytest.fixture
def tiny_weights(tmp_path) -> Path:
    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", TINY)
    torch.manual_seed(0)
    return save_weights(tmp_path / "tiny.safetensors", SPVISModel.from_config(cfg), cfg)


def _iou(gt_rle: dict | None, pred_rle: dict | None) -> float:
    if gt_rle is None or pred_rle is None:
        return 0.0
    g, p = mask_utils.decode(gt_rle).astype(bool), mask_utils.decode(pred_rle).astype(bool)
    return float((g & p).sum() / max((g | p).sum(), 1))


def test_demo_model_segments_every_generated_object_in_both_modes(tmp_path, capsys):
    """`spvis demo` with the packaged model (the default weights) on one fresh 6-frame video: in each mode
    every ground-truth object is segmented (mean IoU >= 0.5 over its visible frames) by an entry with the
    object's own category id, on the right frames; metrics.json scores exactly those results.json entries."""
    from spvis.evaluation import evaluate

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--videos", "1", "--frames", "6"]) == 0
    printed = capsys.readouterr().out
    gt = json.loads((out / "videos" / "train.json").read_text())
    (video,) = gt["videos"]
    assert video["length"] == 6 and len(gt["annotations"]) >= 2
    for mode in ("online", "offline"):
        entries = json.loads((out / mode / "results.json").read_text())
        assert len(entries) == 10  # TEST.MAX_NUM of the demo model
        assert all(len(e["segmentations"]) == 6 and e["video_id"] == video["id"] for e in entries)
        for ann in gt["annotations"]:
            visible = [f for f, s in enumerate(ann["segmentations"]) if s is not None]
            own = [np.mean([_iou(ann["segmentations"][f], e["segmentations"][f]) for f in visible])
                   for e in entries if e["category_id"] == ann["category_id"]]
            assert own and max(own) >= 0.5, (mode, ann["id"], ann["category_id"], own)
        metrics = json.loads((out / mode / "metrics.json").read_text())
        expected = evaluate(out / "videos" / "train.json", out / mode / "results.json")
        assert (metrics["AP"], metrics["AP50"]) == (expected["AP"], expected["AP50"])
        assert metrics["info"]["num_gt_tracks"] == len(gt["annotations"])
        with av.open(str(out / mode / f"{video['id']}.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 6
        assert f"{mode}:" in printed


def test_demo_without_weights_is_a_one_line_error(tmp_path, capsys):
    assert main(["demo", "--weights", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.safetensors" in err[0]


def test_demo_rejects_unknown_modes(tiny_weights, tmp_path, capsys):
    assert main(["demo", "--weights", str(tiny_weights), "--modes", "online,sideways", "--out", str(tmp_path)]) == 2
    assert "--modes" in capsys.readouterr().err


def test_infer_without_weights_uses_the_packaged_demo_model(tmp_path):
    """`spvis infer` falls back to the built-in model; its weights and config ship inside the package."""
    from spvis.cli.demo_cmd import DEMO_WEIGHTS

    assert DEMO_WEIGHTS.is_file() and DEMO_WEIGHTS.with_suffix(".yaml").is_file()
    video = REPO / "tests" / "data" / "videos" / "mmtracking_demo.mp4"
    out = tmp_path / "infer"
    assert main(["infer", "--input", str(video), "--out", str(out), "--max-frames", "2", "--no-overlay",
                 "MODEL.DEVICE=cpu"]) == 0
    entries = json.loads((out / "results.json").read_text())
    assert entries and all(len(e["segmentations"]) == 2 for e in entries)
