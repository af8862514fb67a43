"""Procedural benchmark: valid YTVIS output, determinism per seed, real full occlusions with re-appearance, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from spvis.cli.main import main
from spvis.data.rle import decode_rle
from spvis.data.synth import generate_synthetic_dataset
from spvis.data.synth_render import OCC_FULL
from spvis.data.ytvis import load_video_dataset


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_output_is_valid_ytvis_and_decodes_to_frame_size(tmp_path):
    info = generate_synthetic_dataset(tmp_path / "d", videos=4, frames=6, size="48x64", categories=3,
                                      max_objects=3, occlusion="medium", valid_fraction=0.25, seed=1)
    assert info["videos"] == {"train": 3, "valid": 1}
    for split in ("train", "valid"):
        ds = load_video_dataset(tmp_path / "d" / f"{split}.json", tmp_path / "d" / split / "JPEGImages")
        assert ds.has_annotations and ds.class_names[:1] == ["red_disc"]
        for video in ds.videos:
            assert (video.height, video.width, video.length) == (48, 64, 6)
            assert all(ds.frame_path(video, t).is_file() for t in range(video.length))
            for track in ds.tracks(video.id):
                for t, rle in enumerate(track.segmentations):
                    if rle is not None:
                        m = decode_rle(rle)
                        assert m.shape == (48, 64) and m.sum() == track.areas[t] > 0


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kw = dict(videos=2, frames=5, size=48, categories=4, max_objects=3, occlusion="heavy")
    generate_synthetic_dataset(tmp_path / "a", seed=7, **kw)
    generate_synthetic_dataset(tmp_path / "b", seed=7, **kw)
    generate_synthetic_dataset(tmp_path / "c", seed=8, **kw)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_heavy_occlusion_hides_objects_fully_and_they_come_back(tmp_path):
    generate_synthetic_dataset(tmp_path / "h", videos=6, frames=30, size=64, occlusion="heavy", valid_fraction=0,
                               seed=0)
    generate_synthetic_dataset(tmp_path / "n", videos=6, frames=30, size=64, occlusion="none", valid_fraction=0,
                               seed=0)
    def reappearing(path: Path) -> int:
        data = json.loads(path.read_text())
        count = 0
        for ann in data["annotations"]:
            segs, occ = ann["segmentations"], ann["visibility"]
            for t in range(1, len(segs) - 1):
                if segs[t] is None and occ[t] == OCC_FULL:
                    before = any(s is not None for s in segs[:t])
                    after = any(s is not None for s in segs[t + 1:])
                    count += int(before and after)
        return count
    heavy = reappearing(tmp_path / "h" / "train.json")
    assert heavy >= 6  # hidden frames with the object seen before and after
    assert reappearing(tmp_path / "n" / "train.json") == 0
    data = json.loads((tmp_path / "h" / "train.json").read_text())
    videos_with_event = {a["video_id"] for a in data["annotations"] if OCC_FULL in a["visibility"]}
    assert len(videos_with_event) == 6


def test_frame_stride_and_long_videos(tmp_path):
    base = generate_synthetic_dataset(tmp_path / "s1", videos=1, frames=9, size=48, frame_stride=1, seed=3,
                                      valid_fraction=0)
    strided = generate_synthetic_dataset(tmp_path / "s3", videos=1, frames=3, size=48, frame_stride=4, seed=3,
                                         valid_fraction=0)
    assert base["frames"] == 9 and strided["frames"] == 3
    full = json.loads(Path(base["train_json"]).read_text())["annotations"]
    kept = json.loads(Path(strided["train_json"]).read_text())["annotations"]
    assert len(full) == len(kept) > 0
    for a, b in zip(full, kept):  # the strided video is every 4th frame of the full-rate one
        assert b["segmentations"] == a["segmentations"][::4]
    long = generate_synthetic_dataset(tmp_path / "long", videos=1, frames=240, size=32, max_objects=2, seed=0,
                                      valid_fraction=0)
    assert json.loads(Path(long["train_json"]).read_text())["videos"][0]["length"] == 240


def test_cli_synth_writes_layout_and_reports(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["synth", "--out", str(out), "--videos", "3", "--frames", "4", "--size", "40x56", "--categories",
                 "2", "--occlusion", "light", "--valid-fraction", "0.34", "--seed", "5", "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "wrote 2 train + 1 valid videos (12 frames" in text
    assert (out / "train.json").is_file() and (out / "valid.json").is_file()
    assert len(list((out / "train" / "JPEGImages").rglob("*.jpg"))) == 8


@pytest.mark.parametrize("args, message", [
    (["--size", "axb"], "--size must look like HxW"),
    (["--categories", "99"], "--categories must be in 1..8"),
    (["--valid-fraction", "1.5"], "--valid-fraction must be in [0, 1)"),
    (["--frames", "0"], "must be at least 1"),
])
def test_cli_synth_bad_arguments(tmp_path, capsys, args, message):
    assert main(["synth", "--out", str(tmp_path / "x"), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spvis synth: error:") and message in err and "\n" not in err


def test_cli_synth_out_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "taken"), "--videos", "1", "--no-progress"]) == 2
    assert f"--out {tmp_path / 'taken'}: {tmp_path / 'taken'} exists and is not a folder" in capsys.readouterr().err


def test_occlusion_labels_use_the_ovis_vocabulary_and_evaluate(tmp_path):
    """`spvis eval` reads `occlusion` as OVIS labels: the generated GT must score 1.0 against itself."""
    from spvis.evaluation import evaluate

    generate_synthetic_dataset(tmp_path, videos=3, frames=8, size=64, occlusion="heavy", valid_fraction=0.0, seed=3)
    data = json.loads((tmp_path / "train.json").read_text())
    for ann in data["annotations"]:
        for seg, label in zip(ann["segmentations"], ann["occlusion"]):
            assert (label is None) == (seg is None)
            assert label in (None, "no_occlusion", "slight_occlusion", "severe_occlusion")
    results = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
                "segmentations": a["segmentations"]} for a in data["annotations"]]
    metrics = evaluate(tmp_path / "train.json", results)
    assert metrics["AP"] == pytest.approx(1.0) and "AP_heavy" in metrics
