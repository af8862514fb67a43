"""VIPSeg (VPS) and VSPW (VSS) layouts: loaders, builtin names, ``spvis data check`` with one-line errors naming file,
video, frame and field, the size budget, and the procedural ``spvis synth --task vps|vss`` sets."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spvis.cli.main import main
from spvis.data.catalog import BUILTIN_NAMES, load_dataset, resolve_dataset
from spvis.data.png_io import read_id_png, write_id_png, write_label_png
from spvis.data.vipseg import PanopticDataset, load_vipseg
from spvis.data.vspw import VSPWDataset, load_vspw, to_train_ids
from spvis.errors import DataFormatError

CATEGORIES = [{"id": 0, "name": "wall", "isthing": 0}, {"id": 1, "name": "door", "isthing": 1},
              {"id": 2, "name": "floor", "isthing": 0}, {"id": 3, "name": "person", "isthing": 1}]
H, W = 6, 8


def _ids(t: int) -> np.ndarray:
    """(H, W) ids of frame t: wall 1000 on top, floor 3000 below, a person 4001 moving right, a VOID column."""
    ids = np.full((H, W), 1000, dtype=np.uint32)
    ids[3:] = 3000
    ids[2:5, t:t + 2] = 4001
    ids[:, -1] = 0
    return ids


def write_vipseg(base: Path, frames: int = 3, *, json_png_names: bool = False) -> Path:
    """A hand-made VIPSeg_720P folder with one video ``vid_a``; returns the json path."""
    root = base / "VIPSeg" / "VIPSeg_720P"
    images, anns = [], []
    for t in range(frames):
        name = f"{t:08d}"
        (root / "images" / "vid_a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W, 3), 90, dtype=np.uint8)).save(root / "images" / "vid_a" / f"{name}.jpg")
        ids = _ids(t)
        write_id_png(root / "panomasksRGB" / "vid_a" / f"{name}.png", ids)
        segs = [{"id": i, "category_id": {1000: 0, 3000: 2, 4001: 3}[i], "iscrowd": 0, "area": int((ids == i).sum())}
                for i in (1000, 3000, 4001)]
        images.append({"id": name, "file_name": f"{name}.png" if json_png_names else f"{name}.jpg",
                       "height": H, "width": W})
        anns.append({"image_id": name, "file_name": f"{name}.png", "segments_info": segs})
    path = root / "panoptic_gt_VIPSeg_val.json"
    path.write_text(json.dumps({"videos": [{"video_id": "vid_a", "images": images}],
                                "annotations": [{"video_id": "vid_a", "annotations": anns}],
                                "categories": CATEGORIES}))
    return path


def write_vspw(base: Path, frames: int = 3, split: str = "val") -> Path:
    """A hand-made VSPW_480p folder with one video ``v1``; returns the root."""
    root = base / "VSPW_480p"
    for t in range(frames):
        for sub in ("origin", "mask"):
            (root / "data" / "v1" / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W, 3), 60, dtype=np.uint8)).save(root / "data" / "v1" / "origin" / f"{t:05d}.jpg")
        mask = np.full((H, W), 3, dtype=np.uint8)
        mask[0] = 0
        mask[1, :3] = 255
        mask[4:, t:t + 2] = 124
        write_label_png(root / "data" / "v1" / "mask" / f"{t:05d}.png", mask)
    (root / f"{split}.txt").write_text("v1\n")
    return root


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -------------------------------------------------------------------------------------------------------------
# loaders


def test_vipseg_loader_records_and_things_first_ids(tmp_path):
    ds = load_vipseg(write_vipseg(tmp_path, json_png_names=True))
    assert isinstance(ds, PanopticDataset) and ds.has_annotations and ds.num_classes == 4 and ds.num_things == 2
    assert ds.contiguous_to_dataset_id == [1, 3, 0, 2]  # things (door, person) first, then stuff
    assert ds.class_names == ["door", "person", "wall", "floor"] and ds.dataset_to_contiguous_id[3] == 1
    video = ds.videos[0]
    assert video.video_id == "vid_a" and video.length == 3 and [f.name for f in video.frames] == [
        "00000000", "00000001", "00000002"]
    frame = video.frames[1]
    assert ds.image_path(frame).name == "00000001.jpg" and ds.image_path(frame).is_file()  # json said .png
    assert ds.mask_path(frame).parent == tmp_path / "VIPSeg" / "VIPSeg_720P" / "panomasksRGB" / "vid_a"
    # frame 1: wall rows 0-2 (24 px) - VOID column (3) - person in row 2 (2) = 19; floor 24 - 3 - 4 = 17; person 6
    assert [(s.id, s.category_id, s.area) for s in frame.segments] == [(1000, 0, 19), (3000, 2, 17), (4001, 3, 6)]
    ids = read_id_png(ds.mask_path(frame))
    assert ids.dtype == np.uint32 and np.array_equal(ids, _ids(1))  # R + 256 G + 256^2 B round trip
    assert int((ids == 1000).sum()) == 19


def test_id_png_encoding_is_r_plus_256g_plus_65536b(tmp_path):
    Image.fromarray(np.array([[[1, 2, 3], [255, 0, 0]]], dtype=np.uint8)).save(tmp_path / "x.png")
    assert read_id_png(tmp_path / "x.png").tolist() == [[1 + 256 * 2 + 65536 * 3, 255]]


def test_vspw_loader_and_label_shift(tmp_path):
    root = write_vspw(tmp_path)
    ds = load_vspw(root, "val")
    assert isinstance(ds, VSPWDataset) and ds.has_annotations and ds.num_classes == 124
    assert [v.name for v in ds.videos] == ["v1"] and ds.videos[0].length == 3
    assert ds.mask_path(ds.videos[0].frames[2]).name == "00002.png"
    # 0 (others) and 255 (void) -> 255; classes 1..124 -> 0..123
    assert to_train_ids(np.array([0, 1, 2, 124, 255], dtype=np.uint8)).tolist() == [255, 0, 1, 123, 255]
    (root / "label_num_dic_final.json").write_text(json.dumps({"others": 0, "wall": 1, "person": 124}))
    names = load_vspw(root, "val").class_names
    assert names[0] == "wall" and names[123] == "person" and names[5] == "class_5"


def test_vspw_test_split_without_masks(tmp_path):
    root = tmp_path / "VSPW_480p"
    (root / "data" / "t1" / "origin").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W, 3), dtype=np.uint8)).save(root / "data" / "t1" / "origin" / "0.jpg")
    (root / "test.txt").write_text("t1\n\n")
    ds = load_vspw(root, "test")
    assert not ds.has_annotations and ds.videos[0].frames[0].mask_file is None


def test_builtin_names_resolve_under_the_dataset_roots(tmp_path, monkeypatch):
    for name in ("vipseg_train", "vipseg_val", "vipseg_test", "vspw_train", "vspw_val", "vspw_test"):
        assert name in BUILTIN_NAMES
    write_vipseg(tmp_path)
    write_vspw(tmp_path)
    monkeypatch.delenv("SPVIS_DATASETS", raising=False)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    spec = resolve_dataset("vipseg_val")
    assert spec.kind == "vipseg" and spec.mask_root == tmp_path / "VIPSeg" / "VIPSeg_720P" / "panomasksRGB"
    assert isinstance(load_dataset(spec), PanopticDataset)
    spec = resolve_dataset("vspw_val")
    assert spec.kind == "vspw" and spec.json == tmp_path / "VSPW_480p" / "val.txt"
    assert isinstance(load_dataset(spec), VSPWDataset)
    monkeypatch.setenv("SPVIS_DATASETS", str(tmp_path / "elsewhere"))
    with pytest.raises(Exception, match=r"dataset vspw_val: .*elsewhere.*val\.txt not found .*VSPW_480p/"):
        resolve_dataset("vspw_val")


def test_paths_are_detected_by_format(tmp_path, test_data_dir):
    json_path = write_vipseg(tmp_path)
    renamed = json_path.with_name("val.json")
    renamed.write_text(json_path.read_text())  # no telling name: detected from the content
    assert resolve_dataset(renamed).kind == "vipseg" and resolve_dataset(json_path).kind == "vipseg"
    assert resolve_dataset(write_vspw(tmp_path) / "val.txt").kind == "vspw"
    assert resolve_dataset(test_data_dir / "davis_mini" / "ytvis_gt.json").kind == "video"  # YTVIS unchanged


# -------------------------------------------------------------------------------------------------------------
# spvis data check


def test_check_vipseg_and_vspw_ok(tmp_path, capsys, monkeypatch):
    json_path = write_vipseg(tmp_path)
    code, out, err = _run(capsys, "data", "check", str(json_path), "--stats-json", str(tmp_path / "s.json"))
    assert code == 0 and err == "" and out.strip().endswith("ok")
    assert "videos: 1  frames: 3" in out and "categories: 4 (2 things, 2 stuff)" in out and "tubes" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["format"] == "vipseg" and stats["tubes"] == 3 and stats["segments"] == 9
    root = write_vspw(tmp_path)
    code, out, _ = _run(capsys, "data", "check", str(root))  # a root folder: --split defaults to val
    assert code == 0 and "split val (VSPW semantic)" in out and "classes present: 2 of 124" in out
    monkeypatch.setenv("SPVIS_DATASETS", str(tmp_path))
    code, out, _ = _run(capsys, "data", "check", "vipseg_val")
    assert code == 0 and out.strip().endswith("ok")
    code, _, err = _run(capsys, "data", "show", "vspw_val", "--video", "v1", "--out", str(tmp_path / "x.png"))
    assert code == 2 and "only 'spvis data check' handles this format" in err


def _mutate_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _frame0(data: dict) -> dict:
    return data["annotations"][0]["annotations"][0]


def _craft_png(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (no pixel data follows)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


VIPSEG_CASES = [
    ("png_id_not_in_json", lambda p: _mutate_json(p, lambda d: _frame0(d)["segments_info"].pop()),
     r"panomasksRGB/vid_a/00000000\.png: video vid_a: frame 00000000: field 'segments_info': segment id 4001 is in "
     r"the PNG but not in the json"),
    ("unknown_category", lambda p: _mutate_json(p, lambda d: _frame0(d)["segments_info"][0].update(category_id=99)),
     r"panoptic_gt_VIPSeg_val\.json: video vid_a: frame 00000000: segment 1000: field 'category_id': unknown "
     r"category id 99"),
    ("frames_json_vs_folder", lambda p: write_id_png(p.parent / "panomasksRGB" / "vid_a" / "extra.png", _ids(0)),
     r"video vid_a: field 'images': frame counts differ: the json lists 3 frames, .*vid_a holds 4 PNGs"),
    ("frames_images_vs_annotations", lambda p: _mutate_json(p, lambda d: d["annotations"][0]["annotations"].pop()),
     r"video vid_a: field 'annotations': frame counts differ: 'images' lists 3 frames, 'annotations' 2"),
    ("mask_size", lambda p: write_id_png(p.parent / "panomasksRGB" / "vid_a" / "00000001.png", _ids(1)[:4]),
     r"00000001\.png: video vid_a: frame 00000001: field 'size': mask is 4x8 but its image .*00000001\.jpg is 6x8"),
    ("unreadable_png", lambda p: (p.parent / "panomasksRGB" / "vid_a" / "00000002.png").write_bytes(b"not a png"),
     r"00000002\.png: video vid_a: frame 00000002: field 'mask': not a readable PNG"),
    ("grey_png", lambda p: write_label_png(p.parent / "panomasksRGB" / "vid_a" / "00000002.png",
                                           np.zeros((H, W), np.uint8)),
     r"frame 00000002: field 'mask': must be an RGB PNG of ids"),
    ("absurd_json_size", lambda p: _mutate_json(p, lambda d: d["videos"][0]["images"][1].update(height=100000,
                                                                                                 width=100000)),
     r"video vid_a: frame 00000001: field 'height/width': frame size 100000x100000 is outside the budget"),
    ("absurd_png_header", lambda p: _craft_png(p.parent / "panomasksRGB" / "vid_a" / "00000000.png", 20000, 20000),
     r"00000000\.png: video vid_a: frame 00000000: field 'mask': frame size .*is outside the budget"),
    ("json_size_differs", lambda p: _mutate_json(p, lambda d: d["videos"][0]["images"][0].update(height=5)),
     r"video vid_a: frame 00000000: field 'height/width': is 5x8 but the image .* is 6x8"),
    ("missing_area", lambda p: _mutate_json(p, lambda d: _frame0(d)["segments_info"][1].pop("area")),
     r"segment 3000: field 'area': is missing"),
    ("void_id", lambda p: _mutate_json(p, lambda d: _frame0(d)["segments_info"][1].update(id=0)),
     r"segment 1: field 'id': id 0 is VOID"),
    ("duplicate_video", lambda p: _mutate_json(p, lambda d: d["videos"].append(d["videos"][0])),
     r"video vid_a: field 'video_id': duplicate video id"),
    ("missing_image", lambda p: (p.parent / "images" / "vid_a" / "00000001.jpg").unlink(),
     r"00000001\.jpg: video vid_a: frame 00000001: field 'image': file not found"),
    ("bad_isthing", lambda p: _mutate_json(p, lambda d: d["categories"][0].update(isthing="yes")),
     r"category 0: field 'isthing': must be 0 or 1"),
]


@pytest.mark.parametrize("name, mutate, message", VIPSEG_CASES, ids=[c[0] for c in VIPSEG_CASES])
def test_check_vipseg_bad_input_one_line(tmp_path, capsys, name, mutate, message):
    path = write_vipseg(tmp_path)
    mutate(path)
    code, out, err = _run(capsys, "data", "check", str(path))
    line = err.strip()
    assert code == 2 and "\n" not in line and "Traceback" not in line, out + err
    assert line.startswith("spvis data: error: ") and re.search(message, line), line


def _vspw_mask(root: Path, t: int) -> Path:
    return root / "data" / "v1" / "mask" / f"{t:05d}.png"


VSPW_CASES = [
    ("frame_counts", lambda r: _vspw_mask(r, 2).unlink(),
     r"val\.txt: video v1: field 'mask': frame counts differ: .*origin holds 3 frames, .*mask 2 masks"),
    ("mask_size", lambda r: write_label_png(_vspw_mask(r, 1), np.ones((3, W), np.uint8)),
     r"00001\.png: video v1: frame 00001: field 'size': mask is 3x8 but its image .*00001\.jpg is 6x8"),
    ("bad_value", lambda r: write_label_png(_vspw_mask(r, 0), np.full((H, W), 200, np.uint8)),
     r"00000\.png: video v1: frame 00000: field 'value': value 200 is not a VSPW label"),
    ("unreadable", lambda r: _vspw_mask(r, 2).write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
     r"00002\.png: video v1: frame 00002: field 'mask': not a readable PNG"),
    ("rgb_mask", lambda r: Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(_vspw_mask(r, 0)),
     r"field 'mask': must be a single-channel label PNG"),
    ("absurd_header", lambda r: _craft_png(_vspw_mask(r, 0), 100, 700000),
     r"field 'mask': frame size 700000x100 is outside the budget"),
    ("no_origin", lambda r: (r / "val.txt").write_text("v1\nv2\n"),
     r"val\.txt: video v2: field 'origin': frame folder not found"),
    ("renamed_mask", lambda r: _vspw_mask(r, 2).rename(_vspw_mask(r, 2).with_name("x.png")),
     r"video v1: field 'mask': frame 00002\.jpg has no mask of the same name"),
]


@pytest.mark.parametrize("name, mutate, message", VSPW_CASES, ids=[c[0] for c in VSPW_CASES])
def test_check_vspw_bad_input_one_line(tmp_path, capsys, name, mutate, message):
    root = write_vspw(tmp_path)
    mutate(root)
    code, out, err = _run(capsys, "data", "check", str(root), "--split", "val")
    line = err.strip()
    assert code == 2 and "\n" not in line and "Traceback" not in line, out + err
    assert line.startswith("spvis data: error: ") and re.search(message, line), line


def test_missing_split_file(tmp_path, capsys):
    root = write_vspw(tmp_path)
    code, _, err = _run(capsys, "data", "check", str(root), "--split", "train")
    assert code == 2 and "train.txt: VSPW split file not found" in err
    with pytest.raises(DataFormatError, match="lists no video"):
        (root / "val.txt").write_text("\n")
        load_vspw(root, "val")


# -------------------------------------------------------------------------------------------------------------
# procedural sets


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("task", ["vps", "vss"])
def test_synth_is_deterministic_per_seed(tmp_path, capsys, task):
    args = ["synth", "--task", task, "--videos", "2", "--frames", "4", "--size", "32x40", "--no-progress"]
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert _run(capsys, *args, "--out", str(tmp_path / name), "--seed", seed)[0] == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_synth_vps_has_drifting_stuff_and_things_and_scores_100(tmp_path, capsys, monkeypatch):
    code, out, _ = _run(capsys, "synth", "--task", "vps", "--out", str(tmp_path), "--videos", "3", "--frames", "9",
                        "--size", "48x64", "--categories", "3", "--occlusion", "heavy", "--valid-fraction", "0.34",
                        "--seed", "1", "--no-progress")
    assert code == 0 and "VIPSeg layout" in out and "stuff: sky, ground, water, wall" in out
    monkeypatch.setenv("SPVIS_DATASETS", str(tmp_path))
    for name in ("vipseg_train", "vipseg_val"):
        code, out, err = _run(capsys, "data", "check", name)
        assert code == 0 and err == "" and out.strip().endswith("ok") and "warning" not in out
    ds = load_vipseg(tmp_path / "VIPSeg" / "VIPSeg_720P" / "panoptic_gt_VIPSeg_train.json")
    stuff_areas, things = [], 0
    for video in ds.videos:
        for frame in video.frames:
            kinds = [ds.category(s.category_id).isthing for s in frame.segments]
            assert kinds == sorted(kinds) and kinds.count(False) >= 2  # stuff listed first, at least two regions
            things += sum(kinds)
            stuff_areas.append(next(s.area for s in frame.segments if s.category_id == 3))  # ground (id 3 + 1)
    assert things > 0 and len(set(stuff_areas)) > 3  # the ground boundary drifts
    from spvis.data.synth_panoptic import write_perfect_vps_submission

    gt = tmp_path / "VIPSeg" / "VIPSeg_720P" / "panoptic_gt_VIPSeg_val.json"
    sub = write_perfect_vps_submission(gt, None, tmp_path / "sub")
    code, _, _ = _run(capsys, "eval", "--task", "vps", "--gt", str(gt), "--pred", str(sub))
    metrics = json.loads((sub / "metrics.json").read_text())
    assert code == 0 and metrics["VPQ"] == 100.0 and metrics["STQ"] == pytest.approx(100.0)


def test_synth_vss_passes_check_and_scores_100(tmp_path, capsys):
    code, out, _ = _run(capsys, "synth", "--task", "vss", "--out", str(tmp_path), "--videos", "2", "--frames", "10",
                        "--size", "40x48", "--stuff", "3", "--valid-fraction", "0.5", "--no-progress")
    assert code == 0 and "VSPW layout" in out and "stuff: sky, ground, water\n" in out
    root = tmp_path / "VSPW_480p"
    code, out, err = _run(capsys, "data", "check", str(root / "train.txt"))
    assert code == 0 and err == "" and "void" in out and out.strip().endswith("ok")
    from spvis.data.synth_panoptic import write_perfect_vss_predictions

    pred = write_perfect_vss_predictions(root, "val", tmp_path / "pred")
    code, _, _ = _run(capsys, "eval", "--task", "vss", "--gt", str(root), "--pred", str(pred))
    metrics = json.loads((pred / "metrics.json").read_text())
    assert code == 0 and metrics["mIoU"] == 100.0 and metrics["VC8"] == 100.0
    assert metrics["VC16"] is None  # 10 frames: no 16-frame window (official: NaN)


def test_synth_rejects_bad_options(tmp_path, capsys):
    code, _, err = _run(capsys, "synth", "--task", "vps", "--out", str(tmp_path), "--stuff", "9")
    assert code == 2 and "--stuff must be in 2..4" in err
    code, _, err = _run(capsys, "synth", "--task", "vss", "--out", str(tmp_path), "--frame-stride", "2")
    assert code == 2 and "--frame-stride applies to --task vis only" in err
