"""Hostile and malformed inputs (issue 15): each gives exit code 2 and ONE `spvis <cmd>: error:` line naming the
file and the field, never a traceback, a hang, a crash, a silent acceptance or a partial output file."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spvis.cli.main import main
from spvis.data.rle import encode_mask

H, W, T = 4, 5, 2  # a tiny video: every mask has 20 pixels


def _rle_string(runs: list[int]) -> str:
    """COCO ``rleToString`` of arbitrary (even invalid) runs, so a test can write exactly the corruption it wants."""
    chars = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr((c | 0x20 if more else c) + 48))
    return "".join(chars)


def _mask_rle() -> dict:
    mask = np.zeros((H, W), dtype=bool)
    mask[1:3, 1:4] = True
    return encode_mask(mask)


def _gt() -> dict:
    return {
        "videos": [{"id": 1, "file_names": ["v/0.png", "v/1.png"], "height": H, "width": W, "length": T}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentations": [_mask_rle(), _mask_rle()], "areas": [6, 6]}],
    }


def _results() -> list:
    return [{"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": [_mask_rle(), _mask_rle()]}]


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _frames(root: Path) -> None:
    (root / "v").mkdir(parents=True, exist_ok=True)
    for t in range(T):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "v" / f"{t}.png")


def _one_line_error(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI; assert exit 2 and a single error line (no traceback) holding every needle; return it."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"spvis {argv[0]}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _eval_bad_gt(tmp_path, capsys, mutate, *needles: str) -> None:
    gt = _gt()
    mutate(gt)
    gt_path = _write(tmp_path / "gt.json", gt)
    pred = _write(tmp_path / "results.json", _results())
    before = _files(tmp_path)
    _one_line_error(capsys, ["eval", "--gt", str(gt_path), "--pred", str(pred)], str(gt_path), *needles)
    assert _files(tmp_path) == before  # no metrics.json, no temp file


def _set_counts(runs):
    def mutate(gt):
        gt["annotations"][0]["segmentations"][1] = {"size": [H, W], "counts": _rle_string(runs)}
    return mutate


# ----------------------------------------------------------------------------------------------- hangs
@pytest.mark.parametrize("runs,message", [([5, 10], "cover 15 pixels, expected 4x5=20"),
                                          ([5, 30, 1], "cover 36 pixels"),
                                          ([25, -5], "negative run length"),
                                          ([3, 4, 2, -1, 12], "negative run length")])
def test_gt_rle_with_bad_runs_is_an_error_not_a_hang(tmp_path, capsys, runs, message):
    _eval_bad_gt(tmp_path, capsys, _set_counts(runs), "annotation 1", "field 'segmentations'", "frame 1", message)


@pytest.mark.parametrize("runs,message", [([5, 10], "cover 15 pixels"), ([25, -5], "negative run length")])
def test_training_loader_rejects_bad_gt_runs(tmp_path, capsys, runs, message):
    gt = _gt()
    _set_counts(runs)(gt)
    path = _write(tmp_path / "train.json", gt)
    _frames(tmp_path)
    _one_line_error(capsys, ["data", "check", str(path)], str(path), "annotation 1", "field 'segmentations'",
                    "frame 1", message)


def test_results_rle_with_negative_run_is_rejected(tmp_path, capsys):
    gt = _write(tmp_path / "gt.json", _gt())
    results = _results()
    results[0]["segmentations"][0] = {"size": [H, W], "counts": _rle_string([25, -5])}
    pred = _write(tmp_path / "results.json", results)
    _one_line_error(capsys, ["eval", "--gt", str(gt), "--pred", str(pred)], str(pred), "result 0",
                    "field 'segmentations'", "negative run length")
    assert not (tmp_path / "metrics.json").exists()


# ------------------------------------------------------------------------------------ annotation fields
def _seg(value):
    def mutate(gt):
        gt["annotations"][0]["segmentations"][0] = value
    return mutate


@pytest.mark.parametrize("mutate,message", [
    (_seg({"size": [H, W], "counts": "3é1"}), "non-ASCII character"),
    (_seg({"size": ["4", W], "counts": "PP"}), "'size' must be [height, width] integers"),
    (_seg({"size": [4.5, W], "counts": "PP"}), "'size' must be [height, width] integers"),
    (_seg({"size": [H, W], "counts": [5, "x", 10]}), "uncompressed RLE counts must be integers"),
    (_seg({"size": [H, W], "counts": [25, -5]}), "negative run length"),
    (_seg([[1, 1, 3, "a", 3, 3]]), "polygon coordinates must be numbers"),
    (_seg([[1, 1, 3, 1, 1e308, -1e308]]), "polygon coordinate x=1e+308"),
    (_seg([[1, 1, 3, 1, 1e9, 3]]), "polygon coordinate x=1000000000.0"),
    (_seg([[1, 1, 3, 1, 2, float("nan")]]), "polygon coordinate y=nan"),
], ids=["non_ascii", "str_size", "float_size", "str_uncompressed", "negative_uncompressed", "str_polygon",
        "polygon_1e308", "polygon_1e9", "polygon_nan"])
def test_bad_segmentation_fields(tmp_path, capsys, mutate, message):
    _eval_bad_gt(tmp_path, capsys, mutate, "annotation 1", "field 'segmentations'", "frame 0", message)
    # the training loader (data check) gives the same one-line error
    gt = _gt()
    mutate(gt)
    path = _write(tmp_path / "train.json", gt)
    _frames(tmp_path)
    _one_line_error(capsys, ["data", "check", str(path)], str(path), "field 'segmentations'", message)


def test_non_ascii_result_counts(tmp_path, capsys):
    gt = _write(tmp_path / "gt.json", _gt())
    results = _results()
    results[0]["segmentations"][1] = {"size": [H, W], "counts": "ü3"}
    pred = _write(tmp_path / "results.json", results)
    _one_line_error(capsys, ["eval", "--gt", str(gt), "--pred", str(pred)], str(pred), "result 0",
                    "field 'segmentations'", "non-ASCII")


@pytest.mark.parametrize("value", ["yes", 2, 0.5, [1]])
def test_non_integer_iscrowd(tmp_path, capsys, value):
    def mutate(gt):
        gt["annotations"][0]["iscrowd"] = value
    _eval_bad_gt(tmp_path, capsys, mutate, "annotation 1", "field 'iscrowd'", "must be 0 or 1")
    gt = _gt()
    mutate(gt)
    path = _write(tmp_path / "train.json", gt)
    _frames(tmp_path)
    _one_line_error(capsys, ["data", "check", str(path)], str(path), "field 'iscrowd'")


@pytest.mark.parametrize("height", [10 ** 30, 100_000])
def test_huge_video_height_is_outside_the_budget(tmp_path, capsys, height):
    def mutate(gt):
        gt["videos"][0]["height"] = height
    _eval_bad_gt(tmp_path, capsys, mutate, "video 1", "field 'height/width'", "outside the budget")


def test_unhashable_ids_in_gt(tmp_path, capsys):
    def mutate(gt):
        gt["annotations"][0]["video_id"] = [1]
    _eval_bad_gt(tmp_path, capsys, mutate, "annotation 1", "field 'video_id'")


def test_deeply_nested_json(tmp_path, capsys):
    gt_path = tmp_path / "gt.json"
    gt_path.write_text("[" * 100_000 + "]" * 100_000)
    pred = _write(tmp_path / "results.json", _results())
    _one_line_error(capsys, ["eval", "--gt", str(gt_path), "--pred", str(pred)], str(gt_path), "nested too deeply")
    _write(tmp_path / "gt.json", _gt())
    pred.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    _one_line_error(capsys, ["eval", "--gt", str(gt_path), "--pred", str(pred)], str(pred), "nested too deeply")
    assert not (tmp_path / "metrics.json").exists()


# ---------------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("override,needles", [
    ("MODEL.DECODER.NUM_QUERIES=-5", ["MODEL.DECODER.NUM_QUERIES", "must be positive"]),
    ("MODEL.PIXEL_MEAN=[1.0]", ["MODEL.PIXEL_MEAN", "list of 3 elements"]),
    ("MODEL.PIXEL_MEAN=[1.0, x, 3.0]", ["MODEL.PIXEL_MEAN[1]", "expects a number"]),
    ("SOLVER.BASE_LR=.nan", ["SOLVER.BASE_LR", "finite number"]),
    ("SOLVER.BASE_LR=.inf", ["SOLVER.BASE_LR", "finite number"]),
    ("SOLVER.STEPS=[a, 2]", ["SOLVER.STEPS[0]", "expects an integer"]),
    ("INPUT.MIN_SIZE_TRAIN=[360, 0]", ["INPUT.MIN_SIZE_TRAIN[1]", "must be positive"]),
    ("DATASETS.TRAIN=[[lol]]", ["DATASETS.TRAIN[0]", "expects a string"]),
    ("DATASETS.REGISTER=[3]", ["DATASETS.REGISTER[0]", "expects a mapping"]),
], ids=["neg_queries", "short_mean", "str_in_mean", "nan_lr", "inf_lr", "str_step", "zero_size", "nested_train",
        "register_int"])
def test_bad_config_override(capsys, override, needles):
    _one_line_error(capsys, ["config", override], "command line", *needles)


@pytest.mark.parametrize("text,needles", [
    ("MODEL:\n  DECODER:\n    NUM_QUERIES: -5\n", ["MODEL.DECODER.NUM_QUERIES", "must be positive"]),
    ("_BASE_: 3\n", ["_BASE_ must be the path"]),
    ("_BASE_: [a.yaml]\n", ["_BASE_ must be the path"]),
    ("DATASETS:\n  TRAIN: [[lol]]\n", ["DATASETS.TRAIN[0]", "expects a string"]),
    ("MODEL:\n  PIXEL_STD: [1.0, 0.0, 1.0]\n", ["MODEL.PIXEL_STD[1]", "must be positive"]),
], ids=["neg_queries", "base_int", "base_list", "nested_train", "zero_std"])
def test_bad_config_file(tmp_path, capsys, text, needles):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    _one_line_error(capsys, ["config", "--config", str(path)], str(path), *needles)


def test_latin1_and_deeply_nested_yaml(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_bytes("OUTPUT_DIR: caf\xe9\n".encode("latin-1"))
    _one_line_error(capsys, ["config", "--config", str(path)], str(path), "not UTF-8")
    path.write_text("[" * 50_000 + "]" * 50_000)
    _one_line_error(capsys, ["config", "--config", str(path)], str(path), "nested too deeply")


OFFICIAL = Path(__file__).parent / "data" / "dvis_official_tiny"


@pytest.mark.parametrize("old,new,needles", [
    ("    DEPTH: 18", "    DEPTH: eighteen", ["MODEL.RESNETS.DEPTH must be an integer, got 'eighteen'"]),
    ("    DEPTH: 18", "    DEPTH: 18.5", ["MODEL.RESNETS.DEPTH must be an integer"]),
    ("    NUM_OBJECT_QUERIES: 20", "    NUM_OBJECT_QUERIES: -5", ["MODEL.DECODER.NUM_QUERIES", "must be positive"]),
], ids=["str_depth", "float_depth", "negative_queries"])
def test_bad_official_yaml_for_checkpoint_import(tmp_path, capsys, old, new, needles):
    text = (OFFICIAL / "config.yaml").read_text()
    assert old in text
    bad = tmp_path / "official.yaml"
    bad.write_text(text.replace(old, new, 1))
    weights = next(p for p in OFFICIAL.iterdir() if p.suffix in (".pth", ".pkl"))
    out = tmp_path / "out"
    _one_line_error(capsys, ["checkpoint", "import", str(weights), "--format", "dvis", "--official-config", str(bad),
                             "--out", str(out)], str(bad), *needles)
    assert not out.exists()


def test_latin1_official_yaml(tmp_path, capsys):
    from spvis.checkpoints.official_config import official_to_cfg
    from spvis.errors import ConfigError

    bad = tmp_path / "official.yaml"
    bad.write_bytes((OFFICIAL / "config.yaml").read_bytes() + "# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"official.yaml: not UTF-8"):
        official_to_cfg(bad)


# ------------------------------------------------------------------------------------------- frames budget
def _bomb_png(path: Path, height: int, width: int) -> None:
    """A valid PNG header claiming ``height`` x ``width`` (a few hundred bytes on disk: a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("height,width", [(8000, 8000), (20000, 20000)], ids=["over_budget", "pil_bomb_error"])
def test_huge_frames_are_refused_before_decoding(tmp_path, capsys, height, width):
    frames = tmp_path / "frames"
    frames.mkdir()
    _bomb_png(frames / "0.png", height, width)
    out = tmp_path / "out"
    _one_line_error(capsys, ["infer", "--input", str(frames), "--out", str(out)], "0.png", "outside the budget")
    assert not out.exists() or not any(out.iterdir())


def test_huge_frame_in_dataset_check(tmp_path, capsys):
    path = _write(tmp_path / "train.json", _gt())
    _frames(tmp_path)
    _bomb_png(tmp_path / "v" / "0.png", 20000, 20000)
    _one_line_error(capsys, ["data", "check", str(path)], str(path), "video 1", "field 'file_names'",
                    "outside the budget")


# ------------------------------------------------------------------------------------------------ output paths
def _eval_args(tmp_path: Path) -> list[str]:
    gt = _write(tmp_path / "gt.json", _gt())
    pred = _write(tmp_path / "results.json", _results())
    return ["eval", "--gt", str(gt), "--pred", str(pred)]


def test_eval_out_that_is_a_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "metrics_dir"
    folder.mkdir()
    argv = _eval_args(tmp_path) + ["--out", str(folder)]
    before = _files(tmp_path)
    _one_line_error(capsys, argv, f"--out {folder}", "is a folder")
    assert _files(tmp_path) == before and not any(folder.iterdir())


@pytest.mark.parametrize("kind", ["parent_is_file", "zip_is_folder"])
def test_eval_unwritable_out_fails_before_evaluating(tmp_path, capsys, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    args = _eval_args(tmp_path)
    if kind == "parent_is_file":
        args += ["--out", str(blocker / "metrics.json")]
        needles = ["--out", "blocker exists and is not a folder"]
    else:
        (tmp_path / "zipdir").mkdir()
        args += ["--zip", str(tmp_path / "zipdir")]
        needles = ["--zip", "is a folder"]
    before = _files(tmp_path)
    _one_line_error(capsys, args, *needles)
    assert _files(tmp_path) == before


def _out_argv(tmp_path: Path, cmd: str, out: Path) -> list[str]:
    """The command line of ``cmd`` writing to ``out`` (a folder, or eval's metrics file)."""
    gt = _write(tmp_path / "gt.json", _gt())
    pred = _write(tmp_path / "results.json", _results())
    return {"infer": ["infer", "--input", str(gt), "--out", str(out)],
            "report": ["report", "--gt", str(gt), "--pred", str(pred), "--out", str(out)],
            "split": ["data", "split", str(gt), "--val-fraction", "0.5", "--out", str(out)],
            "synth": ["synth", "--out", str(out), "--videos", "2", "--frames", "2", "--size", "32x32", "--no-progress"],
            "eval": ["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out)]}[cmd]


@pytest.mark.parametrize("cmd", ["infer", "report", "split", "synth"])
def test_out_that_is_an_existing_file(tmp_path, capsys, cmd):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    argv = _out_argv(tmp_path, cmd, blocker)
    before = _files(tmp_path)
    _one_line_error(capsys, argv, f"--out {blocker}", "exists and is not a folder")
    assert blocker.read_text() == "x" and _files(tmp_path) == before


def test_read_only_output_folder_is_one_line(tmp_path, capsys, monkeypatch):
    """A read-only file system (root ignores permission bits, so the refusal is simulated where it happens)."""
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system", kwargs.get("dir"))

    args = _eval_args(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    before = _files(tmp_path)
    _one_line_error(capsys, args + ["--out", str(tmp_path / "m.json")], str(tmp_path / "m.json"),
                    "Read-only file system")
    assert _files(tmp_path) == before


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder no one may write into: mode 0555 for a normal user; for root, which ignores mode bits, the
    immutable attribute (chattr +i), which binds root too. Skipped where neither holds."""
    import shutil
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(ro)], capture_output=True).returncode != 0:
        pytest.skip("running as root, which writes into chmod-read-only folders, and chattr +i (which binds root) "
                    "is not available on this file system")
    try:
        yield ro
    finally:
        subprocess.run([chattr, "-i", str(ro)], check=True)


@pytest.mark.parametrize("cmd, inside", [("infer", True), ("infer", False), ("eval", True), ("split", True),
                                         ("split", False), ("synth", True)],
                         ids=["infer", "infer-itself", "eval", "split", "split-itself", "synth"])
def test_read_only_output_folder_is_refused_up_front(tmp_path, capsys, read_only_folder, cmd, inside):
    out = read_only_folder / ("m.json" if cmd == "eval" else "out") if inside else read_only_folder
    argv = _out_argv(tmp_path, cmd, out)
    before = _files(tmp_path)
    _one_line_error(capsys, argv, f"--out {out}", f"folder {read_only_folder} is not writable")
    assert _files(tmp_path) == before and not any(read_only_folder.iterdir())


@pytest.mark.parametrize("thr", ["1.5", "-1", "nan"])
def test_infer_score_threshold_range(tmp_path, capsys, thr):
    gt = _write(tmp_path / "gt.json", _gt())
    out = tmp_path / "out"
    _one_line_error(capsys, ["infer", "--input", str(gt), "--out", str(out), "--score-thr", thr], "--score-thr")
    assert not out.exists()


# ------------------------------------------------------------------------------------ archives and frame paths
def test_results_zip_bomb_is_refused(tmp_path, capsys, monkeypatch):
    import zipfile

    from spvis.evaluation import results_io

    monkeypatch.setattr(results_io, "MAX_ARCHIVE_MEMBER_BYTES", 1 << 20)  # the same check at a test-sized budget
    gt = _write(tmp_path / "gt.json", _gt())
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("results.json", "[" + " " * (4 << 20) + "]")  # 4 MiB of spaces, ~4 KB zipped
    assert bomb.stat().st_size < 50_000
    _one_line_error(capsys, ["eval", "--gt", str(gt), "--pred", str(bomb)], str(bomb), "field 'results.json'",
                    "budget")
    assert not (tmp_path / "metrics.json").exists()


def test_truncated_results_zip(tmp_path, capsys):
    import zipfile

    gt = _write(tmp_path / "gt.json", _gt())
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("results.json", json.dumps(_results() * 50))
    data = good.read_bytes()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(data[:40] + bytes(len(data) - 140) + data[-100:])  # member data zeroed, directory intact
    _one_line_error(capsys, ["eval", "--gt", str(gt), "--pred", str(broken)], str(broken))


@pytest.mark.parametrize("name", ["../../etc/hostname", "/etc/hostname", "v/../../x.png", "C:\\\\x.png"])
def test_frame_paths_outside_the_image_root(tmp_path, capsys, name):
    gt = _gt()
    gt["videos"][0]["file_names"][1] = name
    path = _write(tmp_path / "train.json", gt)
    _frames(tmp_path)
    _one_line_error(capsys, ["data", "check", str(path)], str(path), "video 1", "field 'file_names'",
                    "relative to the image root")


# ---------------------------------------------------------------------------------------------- verify bundles
def _bundle_copy(tmp_path: Path) -> Path:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(OFFICIAL, bundle)
    return bundle


@pytest.mark.parametrize("frames,needles", [
    (np.array([{"a": 1}], dtype=object), ["inputs.npz", "array 'frames'", "unreadable bundle array"]),
    (np.zeros((2, 16, 16), np.uint8), ["inputs.npz", "array 'frames' must be uint8 (T, H, W, 3)"]),
    (np.zeros((1, 16, 16, 3), np.float32), ["inputs.npz", "array 'frames' must be uint8 (T, H, W, 3)"]),
], ids=["object_array", "no_channels", "float"])
def test_bad_bundle_frames(tmp_path, capsys, frames, needles):
    bundle = _bundle_copy(tmp_path)
    np.savez(bundle / "inputs.npz", frames=frames)  # object arrays are pickled on write, never read back
    _one_line_error(capsys, ["checkpoint", "verify", str(bundle)], *needles)


def test_truncated_bundle_npz(tmp_path, capsys):
    bundle = _bundle_copy(tmp_path)
    data = (bundle / "outputs.npz").read_bytes()
    (bundle / "outputs.npz").write_bytes(data[: len(data) // 2])
    _one_line_error(capsys, ["checkpoint", "verify", str(bundle)], "outputs.npz", "unreadable bundle array")
