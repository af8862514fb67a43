"""``spvis demo`` end to end with a real (tiny, randomly initialised) SPVIS model saved as our weights."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
import torch

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


def test_demo_runs_both_modes_and_writes_scored_results(tiny_weights, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--weights", str(tiny_weights), "--out", str(out), "--videos", "1", "--frames", "3"]) == 0
    printed = capsys.readouterr().out
    gt = json.loads((out / "videos" / "train.json").read_text())
    assert len(gt["videos"]) == 1 and gt["videos"][0]["length"] == 3
    for mode in ("online", "offline"):
        entries = json.loads((out / mode / "results.json").read_text())
        assert len(entries) == 4  # TEST.MAX_NUM per video, both modes
        assert all(len(e["segmentations"]) == 3 and e["video_id"] == gt["videos"][0]["id"] for e in entries)
        assert {e["category_id"] for e in entries} <= {c["id"] for c in gt["categories"]}
        metrics = json.loads((out / mode / "metrics.json").read_text())
        assert 0.0 <= metrics["AP"] <= 1.0 and "HOTA" in metrics["tracking"]["class_avg"]
        with av.open(str(out / mode / f"{gt['videos'][0]['id']}.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 3
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
