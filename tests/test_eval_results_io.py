"""Result files: mask encoding, atomic json / server-zip writing, and validation errors naming the entry."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from spvis.errors import DataFormatError
from spvis.evaluation import encode_masks, evaluate, load_results, write_results
from spvis.evaluation.ground_truth import load_ground_truth
from spvis.data.rle_batch import parse_counts_batch
from spvis.evaluation.synthetic import box_rle

H, W = 12, 16


def _gt() -> dict:
    return {"videos": [{"id": 3, "height": H, "width": W, "length": 2, "file_names": ["a/0.jpg", "a/1.jpg"]}],
            "categories": [{"id": 5, "name": "cat"}],
            "annotations": [{"id": 1, "video_id": 3, "category_id": 5, "iscrowd": 0,
                             "segmentations": [box_rle(H, W, (2, 2, 8, 8)), None], "areas": [36, None]}]}


def _result(**over) -> dict:
    r = {"video_id": 3, "category_id": 5, "score": 0.7, "segmentations": [box_rle(H, W, (2, 2, 8, 8)), None]}
    r.update(over)
    return r


def test_encode_masks_round_trip_and_empty_frames():
    rng = np.random.default_rng(0)
    masks = rng.random((5, H, W)) < 0.3
    masks[1] = False
    rles = encode_masks(masks)
    assert rles[1] is None
    for t in (0, 2, 3, 4):
        assert isinstance(rles[t]["counts"], str)
        decoded = mask_utils.decode({"size": rles[t]["size"], "counts": rles[t]["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), masks[t])
    # threads, torch input and a (T, W, H)-contiguous input give the same strings
    assert encode_masks(masks, num_threads=3) == rles
    import torch
    assert encode_masks(torch.from_numpy(masks)) == rles
    transposed = np.ascontiguousarray(masks.transpose(0, 2, 1)).transpose(0, 2, 1)
    assert encode_masks(transposed) == rles
    assert encode_masks(np.zeros((3, H, W), bool)) == [None, None, None]
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        encode_masks(np.zeros((H, W), bool))


def test_batch_counts_parser_matches_pycocotools():
    rng = np.random.default_rng(1)
    masks = [(rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) < rng.random()).astype(np.uint8)
             for _ in range(60)]
    counts = [mask_utils.encode(np.asfortranarray(m))["counts"] for m in masks]
    parsed = parse_counts_batch(counts + [b"0$", b"1O"])
    assert parsed.errors[:60] == [None] * 60
    assert parsed.areas[:60].tolist() == [int(m.sum()) for m in masks]
    assert parsed.totals[:60].tolist() == [m.size for m in masks]
    assert "invalid character" in parsed.errors[60] and parsed.totals[61] == 0  # "1O": runs 1 and -1


def test_write_results_json_and_zip(tmp_path):
    results = [_result(), _result(score=0.2, segmentations=[None, box_rle(H, W, (0, 0, 3, 3))])]
    write_results(tmp_path / "r.json", results, zip_path=tmp_path / "sub.zip")
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk == results
    with zipfile.ZipFile(tmp_path / "sub.zip") as archive:
        assert archive.namelist() == ["results.json"]
        assert json.loads(archive.read("results.json")) == results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "sub.zip"]  # no temporary files left
    gt = load_ground_truth(_gt())
    from_zip = load_results(tmp_path / "sub.zip", gt)
    assert [r.score for r in from_zip] == [0.7, 0.2] and from_zip[1].frame_areas.tolist() == [0, 9]
    assert evaluate(_gt(), tmp_path / "sub.zip")["AP"] == evaluate(_gt(), tmp_path / "r.json")["AP"]


@pytest.mark.parametrize("bad, message", [
    (_result(video_id=9), r"result 0: field 'video_id': unknown video id 9"),
    (_result(category_id=1), r"result 0 \(video 3\): field 'category_id': unknown category id 1"),
    (_result(score=float("nan")), r"field 'score': must be a finite number, got nan"),
    (_result(score="high"), r"field 'score'"),
    (_result(segmentations=[None]), r"field 'segmentations': has 1 frames but video 3 has 2"),
    (_result(segmentations=[{"size": [H, W], "counts": "0$"}, None]), r"frame 0: counts string has an invalid"),
    (_result(segmentations=[{"size": [H, W], "counts": "2"}, None]), r"frame 0: RLE runs cover 2 pixels"),
    (_result(segmentations=[box_rle(H + 1, W, (0, 0, 2, 2)), None]), r"frame 0: mask size \[13, 16\] differs"),
    (_result(segmentations=[[1, 2, 3], None]), r"frame 0: must be a compressed RLE"),
])
def test_bad_results_raise_one_line_errors_naming_the_entry(tmp_path, bad, message):
    path = tmp_path / "res.json"
    path.write_text(json.dumps([_result(), bad]).replace("NaN", "NaN"))
    with pytest.raises(DataFormatError, match=message.replace("result 0", "result 1")) as info:
        load_results(path, load_ground_truth(_gt()))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_files(tmp_path):
    gt = load_ground_truth(_gt())
    with pytest.raises(DataFormatError, match="results file not found"):
        load_results(tmp_path / "missing.json", gt)
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(DataFormatError, match=r"malformed json \(line 1"):
        load_results(tmp_path / "broken.json", gt)
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(DataFormatError, match="top level must be a list"):
        load_results(tmp_path / "obj.json", gt)
    with zipfile.ZipFile(tmp_path / "wrong.zip", "w") as archive:
        archive.writestr("sub/results.json", "[]")
    with pytest.raises(DataFormatError, match="no results.json at its root"):
        load_results(tmp_path / "wrong.zip", gt)


def test_bad_ground_truth():
    gt = _gt()
    gt["annotations"][0]["video_id"] = 4
    with pytest.raises(DataFormatError, match=r"annotation 1: field 'video_id': unknown video id 4"):
        load_ground_truth(gt)
    gt = _gt()
    gt["annotations"][0]["occlusion"] = ["no_occlusion", "partly"]
    with pytest.raises(DataFormatError, match=r"field 'occlusion': unknown label 'partly'"):
        load_ground_truth(gt)
    gt = _gt()
    gt["annotations"][0]["areas"] = [36]
    with pytest.raises(DataFormatError, match=r"field 'areas': must be a list of 2"):
        load_ground_truth(gt)


def test_empty_result_list_reports_zeros():
    metrics = evaluate(_gt(), [])
    assert metrics["AP"] == 0.0 and metrics["AR100"] == 0.0
    assert metrics["tracking"]["pooled"]["HOTA"] == 0.0 and metrics["tracking"]["pooled"]["CLR_FN"] == 1

