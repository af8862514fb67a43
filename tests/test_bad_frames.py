"""Bad frames are errors naming the file (issue 33): a JPEG cut to a third or zeroed after byte 300, an empty,
missing or mis-sized frame, an mp4 cut in half and a frame over the pixel budget; ``--allow-truncated`` keeps the
frames before the break instead. Checked from headers and end markers, before anything is decoded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spvis.cli.main import main
from test_reliability import _infer_argv, _logged_videos, _one_error_line, dataset, weights  # noqa: F401

DATA = Path(__file__).parent / "data"


def damage(path: Path, how: str) -> None:
    """Damage one frame file the way the hostile-input suite does."""
    data = path.read_bytes()
    if how == "third":
        path.write_bytes(data[: len(data) // 3])
    elif how == "zeroed":
        path.write_bytes(data[:300] + bytes(len(data) - 300))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "missing":
        path.unlink()
    elif how == "other_size":
        with Image.open(path) as im:
            im.resize((im.width // 2, im.height // 2)).save(path)
    else:
        raise ValueError(how)


HOW = ["third", "zeroed", "empty", "missing", "other_size"]


def _sof_patched_jpeg(path: Path, height: int, width: int) -> None:
    """A small JPEG whose header claims ``height`` x ``width`` (a decompression bomb a few KB on disk)."""
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path, quality=90)
    data = bytearray(path.read_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5: sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------------------------- the file check
def test_whole_frames_pass_the_check_and_broken_ones_say_why(tmp_path):
    from spvis.data.frame_check import BrokenFrameError, check_frame_file

    for path in sorted(DATA.rglob("*.jpg")) + sorted(DATA.rglob("*.png")):
        height, width = check_frame_file(path)
        with Image.open(path) as im:
            assert (width, height) == im.size
    frame = tmp_path / "f.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(frame)
    trailer = tmp_path / "trailer.jpg"  # some cameras append data after the end marker: still whole
    trailer.write_bytes(frame.read_bytes() + b"\0" * 100 + b"CAMERA TRAILER")
    assert check_frame_file(trailer) == (48, 64)
    for how, reason in [("third", "without its end marker"), ("zeroed", "without its end marker"),
                        ("empty", "empty file")]:
        broken = tmp_path / f"{how}.jpg"
        shutil.copy(frame, broken)
        damage(broken, how)
        with pytest.raises(BrokenFrameError, match=reason):
            check_frame_file(broken)
    png = tmp_path / "f.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    png.write_bytes(png.read_bytes()[:-12])  # no IEND chunk
    with pytest.raises(BrokenFrameError, match="PNG data ends without its end marker"):
        check_frame_file(png)
    _sof_patched_jpeg(tmp_path / "big.jpg", 8000, 8000)
    with pytest.raises(BrokenFrameError, match="8000x8000 is outside the budget"):
        check_frame_file(tmp_path / "big.jpg")
    with pytest.raises(FileNotFoundError):
        check_frame_file(tmp_path / "none.jpg")


# ---------------------------------------------------------------------------------------------- spvis infer
@pytest.fixture
def bad_dataset(dataset, tmp_path) -> tuple[str, str]:
    """A copy of the 3-video dataset (json, image root) to damage."""
    json_path, root = Path(dataset[0]), Path(dataset[1])
    shutil.copytree(root, tmp_path / "frames")
    shutil.copy(json_path, tmp_path / "train.json")
    return str(tmp_path / "train.json"), str(tmp_path / "frames")


def _frame(dataset: tuple[str, str], video_id: int, t: int) -> Path:
    video = next(v for v in json.loads(Path(dataset[0]).read_text())["videos"] if v["id"] == video_id)
    return Path(dataset[1]) / video["file_names"][t]


@pytest.mark.parametrize("how", HOW)
def test_a_bad_frame_in_video_2_of_a_dataset_names_it_and_keeps_video_1(weights, bad_dataset, tmp_path, capsys, how):
    bad = _frame(bad_dataset, 2, 1)
    damage(bad, how)
    out = tmp_path / "out"
    assert main(_infer_argv(weights, bad_dataset, out)) == 2
    line = _one_error_line(capsys)
    assert str(bad) in line and "video 2" in line and "--resume" in line, line
    assert _logged_videos(out) == [1] and not (out / "results.json").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.name == "2.mp4"]


@pytest.mark.parametrize("how", ["third", "zeroed", "other_size"])
def test_allow_truncated_keeps_the_frames_before_a_bad_one(weights, bad_dataset, tmp_path, capsys, how):
    damage(_frame(bad_dataset, 2, 1), how)
    folder = _frame(bad_dataset, 2, 0).parent
    out = tmp_path / "out"
    assert main(["infer", "--input", str(folder), "--weights", str(weights), "--out", str(out), "--no-overlay"]) == 2
    assert str(_frame(bad_dataset, 2, 1)) in _one_error_line(capsys)
    assert not out.exists() or not any(out.iterdir())
    assert main(["infer", "--input", str(folder), "--weights", str(weights), "--out", str(out), "--no-overlay",
                 "--allow-truncated"]) == 0
    assert "warning" in capsys.readouterr().err
    entries = json.loads((out / "results.json").read_text())
    assert entries and all(len(e["segmentations"]) == 1 for e in entries)  # frame 0, the one before the bad one


@pytest.mark.parametrize("no_overlay", [False, True], ids=["overlay", "no-overlay"])
def test_a_frame_over_the_pixel_budget_is_one_line_before_decoding(weights, tmp_path, capsys, no_overlay):
    _sof_patched_jpeg(tmp_path / "huge.jpg", 8000, 8000)
    out = tmp_path / "out"
    argv = ["infer", "--input", str(tmp_path / "huge.jpg"), "--weights", str(weights), "--out", str(out)]
    assert main(argv + (["--no-overlay"] if no_overlay else [])) == 2
    line = _one_error_line(capsys)
    assert "huge.jpg" in line and "8000x8000 is outside the budget" in line
    assert not out.exists() or not any(out.iterdir())


def test_a_video_over_the_pixel_budget_is_refused_from_its_stream_header(tmp_path, monkeypatch):
    import spvis.data.png_io as png_io
    from spvis.data.frames import open_frame_source
    from spvis.errors import SpvisError
    from spvis.viz.video_writer import VideoWriter

    with VideoWriter(tmp_path / "v.mp4", fps=5) as writer:
        for _ in range(2):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    monkeypatch.setattr(png_io, "MAX_PIXELS", 48 * 64 - 1)  # this small video is now over the budget

    def no_decoding(*args, **kwargs):
        raise AssertionError("a frame was decoded")

    import av.container

    monkeypatch.setattr(av.container.InputContainer, "decode", no_decoding)
    with pytest.raises(SpvisError, match=r"v.mp4: field 'video stream': frame size 48x64 is outside the budget"):
        open_frame_source(tmp_path / "v.mp4")


# ---------------------------------------------------------------------------------------------- spvis train
@pytest.fixture
def train_setup(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(config file, train.json) of the engine tests' tiny run on a fresh dataset; `spvis train` builds the tiny
    model, and nothing may build it before the frames are checked."""
    import spvis.engine.launch as launch
    from test_train_fakes import TinyClipModel, make_synth, tiny_cfg

    train_json = make_synth(tmp_path / "synth")
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_cfg(train_json, tmp_path / "unused", MAX_ITER=2).dump())
    monkeypatch.setattr(launch, "build_model", lambda cfg, source=None: TinyClipModel())
    return config, train_json


def _train_frame(train_json: Path, video_index: int, t: int) -> Path:
    video = json.loads(train_json.read_text())["videos"][video_index]
    return train_json.parent / "train" / "JPEGImages" / video["file_names"][t]


@pytest.mark.parametrize("how", HOW)
def test_a_bad_training_frame_is_an_error_before_the_first_step(train_setup, tmp_path, capsys, monkeypatch, how):
    import spvis.engine.launch as launch

    config, train_json = train_setup
    bad = _train_frame(train_json, 1, 3)
    damage(bad, how)
    monkeypatch.setattr(launch, "build_model", lambda cfg, source=None: pytest.fail("the model was built"))
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), f"OUTPUT_DIR={out}"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("spvis train: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(bad) in lines[0] and "video 2" in lines[0] and "frame 3" in lines[0] and "--allow-truncated" in lines[0]
    assert not out.exists()


def test_allow_truncated_trains_on_the_frames_before_a_bad_one(train_setup, tmp_path, capsys):
    from spvis.data import build_clip_dataset
    from spvis.config import load_config

    config, train_json = train_setup
    damage(_train_frame(train_json, 1, 3), "zeroed")
    damage(_train_frame(train_json, 2, 0), "third")
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), f"OUTPUT_DIR={out}", "--allow-truncated"]) == 0
    err = capsys.readouterr().err
    assert "video 2 cut to its first 3 frames" in err and "video 3 left out" in err
    assert (out / "model_final.safetensors").is_file()
    clips = build_clip_dataset(load_config(config), str(train_json))
    clips.check_frames(allow_truncated=True)
    assert [(v.id, v.length) for v in clips.entries] == [(1, 6), (2, 3)]
    video_2 = [clips[i] for i in range(1, 41, 2)]  # index 1 mod 2: video 2's clips, at 20 random positions
    assert all(c["video_id"] == 2 and max(c["frame_indices"]) < 3 for c in video_2)


def test_the_python_api_refuses_a_cut_video_unless_allowed(weights, bad_dataset):
    import spvis

    bad = _frame(bad_dataset, 2, 1)
    damage(bad, "zeroed")
    segmenter = spvis.load(weights, device="cpu")
    with pytest.raises(spvis.SpvisError, match=str(bad)):
        segmenter.predict(bad.parent)
    video = segmenter.predict(bad.parent, allow_truncated=True)
    assert video.truncated and str(bad) in video.error and video.num_frames == 1
    with pytest.raises(spvis.SpvisError, match="video 2"):
        segmenter.predict_dataset(*bad_dataset)
    assert {e["video_id"] for e in segmenter.predict_dataset(*bad_dataset, allow_truncated=True)} == {1, 2, 3}


def test_datasets_without_frame_files_need_no_check():
    """Clips generated in memory (no check_frames) pass, alone or as a part of a mixture."""
    from spvis.data.clip_dataset import MixedClipDataset
    from spvis.engine.launch import check_train_frames

    class InMemory:
        class_names, contiguous_to_dataset_id, dataset_to_contiguous_id, clip_length = ["a"], [1], {1: 0}, 1

    check_train_frames(InMemory(), allow_truncated=False)
    mixed = MixedClipDataset([InMemory(), InMemory()])
    assert mixed.check_frames() == []
