"""Honesty about the built-in model: its card names its six classes and its training data, and it warns (one
line naming `spvis models`) when it meets input that is not `spvis synth` data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import spvis
from spvis.cli.main import main
from spvis.engine.domain_check import is_synthetic_input

DAVIS = Path(__file__).parent / "data" / "davis_mini"
SHAPES = ["red_disc", "green_square", "blue_triangle", "yellow_star", "magenta_ring", "cyan_cross"]


def synth(tmp_path: Path) -> dict:
    return spvis.generate_synthetic_dataset(tmp_path / "synth", videos=1, frames=3, size=(96, 128), categories=6,
                                            occlusion="none", valid_fraction=0.0, seed=5)


def test_synthetic_input_is_recognised_by_its_json(tmp_path):
    written = synth(tmp_path)
    video_folder = next(Path(written["train_image_root"]).iterdir())
    assert is_synthetic_input(written["train_json"]) and is_synthetic_input(video_folder)
    assert not is_synthetic_input(DAVIS / "ytvis_gt.json") and not is_synthetic_input(DAVIS / "JPEGImages")
    assert not is_synthetic_input([np.zeros((8, 8, 3), np.uint8)])


def test_infer_warns_once_on_real_frames_and_not_on_synth_data(tmp_path, capsys):
    folder = DAVIS / "JPEGImages" / "480p" / "car-shadow"
    code = main(["infer", "--input", str(folder), "--out", str(tmp_path / "real"), "--max-frames", "2",
                 "--no-overlay", "--device", "cpu"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert code == 0 and len(warnings) == 1
    assert warnings[0].startswith("spvis infer: warning: ") and "`spvis models`" in warnings[0]
    written = synth(tmp_path)
    code = main(["infer", "--input", written["train_json"], "--out", str(tmp_path / "synth_out"), "--no-overlay",
                 "--device", "cpu"])
    assert code == 0 and "warning" not in capsys.readouterr().err


def test_python_api_warns_once_per_segmenter(capsys):
    segmenter = spvis.load("demo", device="cpu")
    frames = [np.full((64, 96, 3), 120, np.uint8)] * 2
    list(segmenter.stream(frames))
    list(segmenter.stream(frames))
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if "warning" in line]) == 1 and "spvis models" in err[-1]


def test_the_demo_model_card_names_its_classes_and_data(tmp_path, capsys):
    segmenter = spvis.load("demo", device="cpu")
    assert segmenter.names == SHAPES
    segmenter.save_pretrained(tmp_path / "copy")
    card = (tmp_path / "copy" / "MODEL_CARD.md").read_text()
    assert all(f"| {k} | {name} |" in card for k, name in enumerate(SHAPES)) and "class 0" not in card
    assert "`spvis synth`" in card
    assert main(["models", "demo"]) == 0
    out = capsys.readouterr().out
    assert "| 0 | red_disc |" in out and "trained on: procedural videos" in out
