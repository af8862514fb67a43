"""``spvis infer`` for real: saved tiny weights, an mp4, a frame folder and a dataset json scored by evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.checkpoints import save_weights
from spvis.cli.main import main
from spvis.config import load_config
from spvis.modeling.meta_arch import SPVISModel

REPO = Path(__file__).resolve().parents[1]
SMALL = ["MODEL.TRACKER.ENABLED=True", "MODEL.DEVICE=cpu", "MODEL.NUM_CLASSES=1", "INPUT.MIN_SIZE_TEST=64",
         "INPUT.MAX_SIZE_TEST=128", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.DECODER.DEC_LAYERS=1"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", SMALL)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(path, SPVISModel.from_config(cfg), cfg)
    return path


def _frames_in(mp4: Path) -> int:
    with av.open(str(mp4)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_mp4_gives_results_and_overlay(weights, tmp_path, test_data_dir):
    out = tmp_path / "out"
    code = main(["infer", "--input", str(test_data_dir / "videos" / "mmtracking_demo.mp4"), "--weights",
                 str(weights), "--out", str(out), "--max-frames", "2"])
    assert code == 0
    entries = json.loads((out / "results.json").read_text())
    assert entries and all(len(e["segmentations"]) == 2 for e in entries)
    assert _frames_in(out / "mmtracking_demo.mp4") == 2


def test_dataset_json_results_are_each_videos_own_results(weights, tmp_path, test_data_dir):
    """A dataset json runs each of its videos as that video alone would run (its frames in file_names order,
    under its own video id), and evaluate reads back every entry. (Random weights: their AP says nothing;
    the AP of a trained model through infer is pinned in test_occlusion_track_id.)"""
    from spvis.evaluation import evaluate

    gt_path = test_data_dir / "davis_mini" / "ytvis_gt.json"
    frames_root = test_data_dir / "davis_mini" / "JPEGImages" / "480p"
    gt = json.loads(gt_path.read_text())
    out = tmp_path / "out"
    assert main(["infer", "--input", str(gt_path), "--image-root", str(frames_root), "--weights", str(weights),
                 "--out", str(out), "--no-overlay"]) == 0
    entries = json.loads((out / "results.json").read_text())
    for video in gt["videos"]:
        mine = [e for e in entries if e["video_id"] == video["id"]]
        assert len(mine) == 10  # TEST.MAX_NUM per video
        for entry in mine:
            assert entry["category_id"] == 1 and len(entry["segmentations"]) == video["length"]
            assert all(s["size"] == [video["height"], video["width"]] for s in entry["segmentations"])
        folder = frames_root / video["file_names"][0].split("/")[0]
        alone = tmp_path / f"alone_{video['id']}"
        assert main(["infer", "--input", str(folder), "--weights", str(weights), "--out", str(alone),
                     "--no-overlay"]) == 0
        expected = json.loads((alone / "results.json").read_text())  # a lone folder is video 1, labels k + 1
        assert [(e["category_id"], e["segmentations"]) for e in mine] == \
            [(e["category_id"], e["segmentations"]) for e in expected]
        np.testing.assert_allclose([e["score"] for e in mine], [e["score"] for e in expected], rtol=1e-6)
    assert {e["video_id"] for e in entries} == {1, 2}
    metrics = evaluate(gt_path, out / "results.json")
    assert metrics["info"]["num_results"] == len(entries) == 20 and metrics["info"]["num_videos"] == 2


def test_frame_folder_overlay(weights, tmp_path, test_data_dir):
    folder = test_data_dir / "davis_mini" / "JPEGImages" / "480p" / "car-shadow"
    out = tmp_path / "out"
    assert main(["infer", "--input", str(folder), "--weights", str(weights), "--out", str(out)]) == 0
    assert _frames_in(out / "car-shadow.mp4") == len(list(folder.glob("*.jpg")))


def test_config_that_does_not_match_the_weights_is_one_line(weights, tmp_path, test_data_dir, capsys):
    config = tmp_path / "other.yaml"
    config.write_text("_BASE_: " + str(REPO / "configs" / "synth" / "Base-synth.yaml") + "\n"
                      "MODEL: {NUM_CLASSES: 1, TRACKER: {ENABLED: true}, DECODER: {NUM_QUERIES: 8}}\n")
    code = main(["infer", "--input", str(test_data_dir / "videos" / "mmtracking_demo.mp4"), "--weights",
                 str(weights), "--config", str(config), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "tiny.safetensors" in err[0]


def test_offline_mode_runs_the_refiner_engine(tmp_path, test_data_dir):
    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", SMALL + ["MODEL.REFINER.ENABLED=True"])
    torch.manual_seed(0)
    weights = save_weights(tmp_path / "offline.safetensors", SPVISModel.from_config(cfg), cfg)
    folder = test_data_dir / "davis_mini" / "JPEGImages" / "480p" / "car-shadow"
    out = tmp_path / "out"
    code = main(["infer", "--input", str(folder), "--weights", str(weights), "--mode", "offline", "--out", str(out),
                 "--max-frames", "3"])
    assert code == 0
    entries = json.loads((out / "results.json").read_text())
    assert len(entries) == cfg.TEST.MAX_NUM and all(len(e["segmentations"]) == 3 for e in entries)
    assert _frames_in(out / "car-shadow.mp4") == 3


def test_offline_mode_without_refiner_is_one_line(weights, tmp_path, test_data_dir, capsys):
    folder = test_data_dir / "davis_mini" / "JPEGImages" / "480p" / "car-shadow"
    code = main(["infer", "--input", str(folder), "--weights", str(weights), "--mode", "offline",
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "refiner" in capsys.readouterr().err


def test_truncated_mp4_is_an_error_unless_allowed(weights, tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:  # index first: truncation keeps it
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for _ in range(12):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert main(["infer", "--input", str(path), "--weights", str(weights), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"spvis infer: error: {path}: video ends after ") and "--allow-truncated" in err[-1]
    assert not out.exists() or not any(out.iterdir())  # not scored as a complete video, no partial overlay
    assert main(["infer", "--input", str(path), "--weights", str(weights), "--out", str(out), "--no-overlay",
                 "--allow-truncated"]) == 0
    assert "truncated" in capsys.readouterr().err
    entries = json.loads((out / "results.json").read_text())
    read = len(entries[0]["segmentations"])
    assert 0 < read < 12 and all(len(e["segmentations"]) == read for e in entries)


@pytest.mark.parametrize("spelling", ["same", "dot"])
def test_infer_never_overwrites_its_input_video(weights, tmp_path, test_data_dir, capsys, monkeypatch, spelling):
    """`spvis infer --input d/v.mp4 --out d` (or `--out .` inside d) would write the overlay d/v.mp4 over the
    video: refused before anything is written, the input byte-identical and nothing new in the folder."""
    import hashlib
    import shutil

    folder = tmp_path / "same"
    folder.mkdir()
    video = folder / "mmtracking_demo.mp4"
    shutil.copy(test_data_dir / "videos" / "mmtracking_demo.mp4", video)
    before = hashlib.md5(video.read_bytes()).hexdigest()
    out = str(folder)
    if spelling == "dot":
        monkeypatch.chdir(folder)
        out = "."
    code = main(["infer", "--input", str(video), "--weights", str(weights), "--out", out, "--max-frames", "2"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mmtracking_demo.mp4" in err[0] and "--input" in err[0], err
    assert hashlib.md5(video.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in folder.iterdir()) == ["mmtracking_demo.mp4"]
    # with --no-overlay nothing would overwrite the video: the same folder is fine
    assert main(["infer", "--input", str(video), "--weights", str(weights), "--out", out, "--max-frames", "2",
                 "--no-overlay"]) == 0
    assert hashlib.md5(video.read_bytes()).hexdigest() == before


def test_infer_refuses_results_json_over_its_dataset_json(weights, tmp_path, test_data_dir, capsys):
    import shutil

    data = tmp_path / "d"
    shutil.copytree(test_data_dir / "davis_mini", data)
    gt = data / "results.json"
    (data / "ytvis_gt.json").rename(gt)
    before = gt.read_bytes()
    code = main(["infer", "--input", str(gt), "--image-root", str(data / "JPEGImages" / "480p"), "--weights",
                 str(weights), "--out", str(data), "--no-overlay"])
    assert code == 2 and "--input" in capsys.readouterr().err
    assert gt.read_bytes() == before


def test_dataset_json_without_image_root_finds_frames_as_data_check_does(weights, tmp_path):
    """`spvis infer --input syn/valid.json` (no --image-root) reads syn/valid/JPEGImages, as `spvis data check`
    does; it failed with 'frame file not found: syn/video_00002/00000.jpg' (issue 28)."""
    from spvis.data.synth import generate_synthetic_dataset

    info = generate_synthetic_dataset(tmp_path / "syn", videos=2, frames=3, size=(48, 64), categories=1,
                                      occlusion="none", valid_fraction=0.5, seed=1)
    out = tmp_path / "out"
    assert main(["infer", "--input", str(info["valid_json"]), "--weights", str(weights), "--out", str(out),
                 "--no-overlay"]) == 0
    assert json.loads((out / "results.json").read_text())
