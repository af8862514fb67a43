"""`spvis data check|split|show` on synthetic, real and broken inputs: every bad input gives one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from spvis.cli.main import main
from spvis.data.synth import generate_synthetic_dataset

DATA = Path(__file__).parent / "data"
DAVIS = ["--json", str(DATA / "davis_mini" / "ytvis_gt.json"), "--image-root",
         str(DATA / "davis_mini" / "JPEGImages" / "480p")]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_synthetic_dataset(out, videos=5, frames=6, size="40x48", categories=3, max_objects=3,
                               occlusion="heavy", valid_fraction=0.2, seed=2)
    return out


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_synthetic_prints_statistics(synth, capsys, tmp_path):
    code, out, err = _run(capsys, "data", "check", str(synth / "train.json"), "--stats-json",
                          str(tmp_path / "s.json"), "--all-frames")
    assert code == 0 and err == "" and out.strip().endswith("ok")
    assert "videos: 4  frames: 24" in out and "red_disc" in out and "occlusion labels" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["videos"] == 4 and stats["frames"] == 24 and stats["tracks"] > 0
    assert sum(c["tracks"] for c in stats["per_category"].values()) == stats["tracks"]


def test_check_real_davis_sample(capsys):
    code, out, _ = _run(capsys, "data", "check", *DAVIS)
    assert code == 0 and "videos: 2  frames: 10" in out and "sizes: 480x854 (2)" in out


def _broken(synth: Path, tmp_path: Path, mutate) -> Path:
    data = json.loads((synth / "train.json").read_text())
    mutate(data)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    (tmp_path / "train").mkdir(exist_ok=True)
    link = tmp_path / "train" / "JPEGImages"
    if not link.exists():
        link.symlink_to(synth / "train" / "JPEGImages")
    return path


def _first_visible(data: dict) -> tuple[dict, int]:
    ann = data["annotations"][0]
    return ann, next(t for t, s in enumerate(ann["segmentations"]) if s is not None)


def _bad_counts(data):
    ann, t = _first_visible(data)
    ann["segmentations"][t]["counts"] = ann["segmentations"][t]["counts"][:-3] + "~~~"


def _short_runs(data):
    ann, t = _first_visible(data)
    ann["segmentations"][t] = {"size": [40, 48], "counts": [100, 20, 30]}


def _wrong_size(data):
    ann, t = _first_visible(data)
    ann["segmentations"][t]["size"] = [41, 48]


CASES = [
    ("length", lambda d: d["annotations"][0]["segmentations"].pop(),
     r"video \d+: annotation 1: field 'segmentations': has 5 entries but video \d+ has 6 frames"),
    ("category", lambda d: d["annotations"][0].update(category_id=99),
     r"video \d+: annotation 1: field 'category_id': unknown category id 99"),
    ("dup_ann", lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]),
     r"annotation 1: field 'id': duplicate annotation id"),
    ("dup_video", lambda d: d["videos"][1].update(id=d["videos"][0]["id"]),
     r"video 1: field 'id': duplicate video id"),
    ("dup_category", lambda d: d["categories"].append(dict(d["categories"][0])),
     r"category 1: field 'id': duplicate category id"),
    ("bad_rle", _bad_counts, r"video \d+: annotation 1: field 'segmentations': frame \d+: undecodable RLE"),
    ("short_rle", _short_runs, r"annotation 1: field 'segmentations': frame \d+: uncompressed RLE runs do not cover"),
    ("mask_size", _wrong_size,
     r"annotation 1: field 'segmentations': frame \d+: mask size \[41, 48\] differs from the video size \[40, 48\]"),
    ("unknown_video", lambda d: d["annotations"][0].update(video_id=999),
     r"annotation 1: field 'video_id': unknown video id 999"),
    ("no_videos", lambda d: d.pop("videos"), r"field 'videos': must be a list of videos"),
    ("missing_frame", lambda d: d["videos"][0]["file_names"].__setitem__(2, "nope/00002.jpg"),
     r"video 1: field 'file_names': frame 2 not found: .*nope/00002\.jpg"),
    ("video_size", lambda d: d["videos"][0].update(height=50),
     r"annotation 1: field 'segmentations': frame \d+: mask size \[40, 48\] differs from the video size \[50, 48\]"),
]


@pytest.mark.parametrize("name, mutate, message", CASES, ids=[c[0] for c in CASES])
def test_check_bad_input_one_line(synth, tmp_path, capsys, name, mutate, message):
    path = _broken(synth, tmp_path, mutate)
    code, out, err = _run(capsys, "data", "check", str(path))
    assert code == 2, out
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"spvis data: error: {path}")
    assert __import__("re").search(message, line), line


def test_check_frame_size_differs_from_json(synth, tmp_path, capsys):
    def shrink(data):
        data["videos"][0]["height"] = 40  # unchanged json; the frame on disk is replaced below
    path = _broken(synth, tmp_path, shrink)
    data = json.loads(path.read_text())
    frames = tmp_path / "frames"
    (frames / "v").mkdir(parents=True)
    for i, name in enumerate(data["videos"][0]["file_names"]):
        size = (40, 48) if i else (30, 48)
        Image.fromarray(np.zeros(size + (3,), dtype=np.uint8)).save(frames / name.replace(name.split("/")[0], "v"))
    data["videos"][0]["file_names"] = [f"v/{Path(n).name}" for n in data["videos"][0]["file_names"]]
    path.write_text(json.dumps(data))
    code, _, err = _run(capsys, "data", "check", str(path), "--image-root", str(frames))
    assert code == 2
    assert "video 1: field 'height/width': is 40x48 but frame 0" in err and "is 30x48" in err


@pytest.mark.parametrize("text, message", [("{\"videos\": [", "malformed json (line 1"),
                                           ("[1, 2]", "top level must be an object"),
                                           (b"\xff\xfe{}", "malformed json (not UTF-8 text)")])
def test_check_malformed_json(tmp_path, capsys, text, message):
    path = tmp_path / "bad.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, _, err = _run(capsys, "data", "check", str(path))
    assert code == 2 and f"{path}: {message}" in err and err.count("\n") == 1


def test_check_unknown_dataset_and_debug(capsys, tmp_path):
    code, _, err = _run(capsys, "data", "check", "not_a_dataset")
    assert code == 2 and "unknown dataset 'not_a_dataset'" in err
    code, _, err = _run(capsys, "data", "check")
    assert code == 2 and "give a dataset name or json" in err
    with pytest.raises(Exception, match="dataset json not found"):
        main(["--debug", "data", "check", str(tmp_path / "missing.json")])


def test_split_is_deterministic_and_complete(synth, tmp_path, capsys):
    code, out, _ = _run(capsys, "data", "split", str(synth / "train.json"), "--val-fraction", "0.5", "--seed", "3",
                        "--out", str(tmp_path / "a"))
    assert code == 0 and "train: 2 videos" in out and "valid: 2 videos" in out
    _run(capsys, "data", "split", str(synth / "train.json"), "--val-fraction", "0.5", "--seed", "3",
         "--out", str(tmp_path / "b"))
    a_train = json.loads((tmp_path / "a" / "train.json").read_text())
    a_valid = json.loads((tmp_path / "a" / "valid.json").read_text())
    assert a_train == json.loads((tmp_path / "b" / "train.json").read_text())
    source = json.loads((synth / "train.json").read_text())
    ids = sorted(v["id"] for v in a_train["videos"] + a_valid["videos"])
    assert ids == sorted(v["id"] for v in source["videos"])
    assert not {v["id"] for v in a_train["videos"]} & {v["id"] for v in a_valid["videos"]}
    assert len(a_train["annotations"]) + len(a_valid["annotations"]) == len(source["annotations"])
    assert all(a["video_id"] in {v["id"] for v in a_valid["videos"]} for a in a_valid["annotations"])
    code, out, _ = _run(capsys, "data", "check", str(tmp_path / "a" / "valid.json"))  # frames found via the link
    assert code == 0 and "videos: 2" in out


def test_split_bad_inputs(synth, tmp_path, capsys):
    code, _, err = _run(capsys, "data", "split", str(synth / "train.json"), "--val-fraction", "1.0",
                        "--out", str(tmp_path / "x"))
    assert code == 2 and "--val-fraction must be in (0, 1)" in err
    data = json.loads((synth / "train.json").read_text())
    data.pop("annotations")
    (tmp_path / "test.json").write_text(json.dumps(data))
    code, _, err = _run(capsys, "data", "split", str(tmp_path / "test.json"), "--val-fraction", "0.3",
                        "--out", str(tmp_path / "x"))
    assert code == 2 and "test.json: field 'annotations': has no annotations" in err
    assert not (tmp_path / "x").exists()


def test_show_png_and_mp4(synth, tmp_path, capsys):
    code, out, _ = _run(capsys, "data", "show", str(synth / "train.json"), "--video", "2", "--out",
                        str(tmp_path / "v.mp4"), "--fps", "4")
    assert code == 0 and "wrote 6 frames of video 2" in out
    with av.open(str(tmp_path / "v.mp4")) as container:
        assert container.streams.video[0].frames == 6
    code, out, _ = _run(capsys, "data", "show", *DAVIS, "--video", "car-shadow", "--out", str(tmp_path / "s.png"))
    assert code == 0 and "wrote 5 frames of video 1" in out
    sheet = np.asarray(Image.open(tmp_path / "s.png"))
    assert sheet.shape[1] == 4 * 320 and sheet.shape[0] == 2 * 180


def test_show_bad_inputs(synth, tmp_path, capsys):
    code, _, err = _run(capsys, "data", "show", str(synth / "train.json"), "--video", "77", "--out",
                        str(tmp_path / "v.mp4"))
    assert code == 2 and "train.json: field 'videos': no video '77'" in err
    code, _, err = _run(capsys, "data", "show", str(synth / "train.json"), "--video", "2", "--out",
                        str(tmp_path / "v.gif"))
    assert code == 2 and "--out must end in .mp4 or .png" in err


def test_check_split_without_annotations(synth, tmp_path, capsys):
    data = json.loads((synth / "valid.json").read_text())
    data.pop("annotations")
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(data))
    code, out, _ = _run(capsys, "data", "check", str(path), "--image-root", str(synth / "valid" / "JPEGImages"))
    assert code == 0 and "annotations: none" in out and "videos: 1" in out


def test_check_coco_images(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("DATASETS:\n  REGISTER:\n"
                   f"    - {{name: coco_mini_t, json: {DATA / 'coco_mini' / 'instances.json'}, "
                   f"image_root: {DATA / 'coco_mini' / 'images'}, kind: image}}\n"
                   f"    - {{name: coco_mini_missing, json: {DATA / 'coco_mini' / 'instances_with_binary_mask.json'}, "
                   f"image_root: {DATA / 'coco_mini' / 'images'}, kind: image}}\n")
    code, out, _ = _run(capsys, "data", "check", "coco_mini_t", "--config", str(cfg))
    assert code == 0 and "images: 2  instances (non-crowd, mapped): 3" in out and "elephant: 1" in out
    code, _, err = _run(capsys, "data", "check", "coco_mini_missing", "--config", str(cfg))
    assert code == 2
    assert "instances_with_binary_mask.json: image 374545: field 'file_name': image not found" in err
