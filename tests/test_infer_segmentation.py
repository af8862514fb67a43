"""``spvis infer --task vps|vss`` end to end on the synthetic VIPSeg / VSPW layouts with a tiny random model, scored
by ``spvis eval --task vps|vss``; panoptic ids (stuff per class, things per track); bad input as one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.checkpoints import save_weights
from spvis.cli.main import main
from spvis.config import load_config
from spvis.data.png_io import read_id_png, read_label_png
from spvis.engine.segmentation import VideoSegmentIds, panoptic_to_host
from spvis.modeling.inference import PanopticFrame
from spvis.modeling.meta_arch import SPVISModel

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 6  # spvis synth --categories 2: 2 things + 4 stuff classes
TINY = ["MODEL.TRACKER.ENABLED=True", "MODEL.REFINER.ENABLED=True", "MODEL.DEVICE=cpu",
        f"MODEL.NUM_CLASSES={NUM_CLASSES}", "INPUT.MIN_SIZE_TEST=32", "INPUT.MAX_SIZE_TEST=64",
        "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.DECODER.DEC_LAYERS=1"]
LOOSE = ["TEST.PANOPTIC.OBJECT_THRESHOLD=0.0", "TEST.PANOPTIC.OVERLAP_THRESHOLD=0.0"]  # a random model's segments


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", TINY)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(path, SPVISModel.from_config(cfg), cfg)
    return path


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    for task in ("vps", "vss"):
        assert main(["synth", "--task", task, "--out", str(root / task), "--videos", "2", "--frames", "4", "--size",
                     "32x40", "--categories", "2", "--valid-fraction", "0.5", "--seed", "3", "--no-progress"]) == 0
    return {"vps": root / "vps" / "VIPSeg" / "VIPSeg_720P" / "panoptic_gt_VIPSeg_val.json",
            "vss": root / "vss" / "VSPW_480p" / "val.txt"}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_vps_infer_writes_the_submission_that_eval_scores(weights, layouts, tmp_path, capsys):
    gt, out = layouts["vps"], tmp_path / "vps"
    code, stdout, err = _run(capsys, "infer", "--task", "vps", "--input", str(gt), "--weights", str(weights),
                             "--out", str(out), *LOOSE)
    assert code == 0, err
    assert "spvis eval --task vps" in stdout
    pred = json.loads((out / "pred.json").read_text())
    gt_json = json.loads(gt.read_text())
    categories = {c["id"]: c["isthing"] for c in gt_json["categories"]}
    (video,) = pred["annotations"]
    assert video["video_id"] == gt_json["videos"][0]["video_id"] and len(video["annotations"]) == 4
    listed = 0
    for frame in video["annotations"]:
        png = read_id_png(out / "pan_pred" / video["video_id"] / frame["file_name"])
        assert png.shape == (32, 40)
        ids = [s["id"] for s in frame["segments_info"]]
        assert sorted(ids) == sorted(set(np.unique(png).tolist()) - {0})  # every listed id drawn, every drawn listed
        for s in frame["segments_info"]:
            assert s["isthing"] == categories[s["category_id"]]
        listed += len(ids)
    assert listed > 0  # the loose thresholds give the random model segments
    assert (out / f"{video['video_id']}.mp4").is_file()  # the overlay
    code, _, err = _run(capsys, "eval", "--task", "vps", "--gt", str(gt), "--pred", str(out))
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scale"] == 100 and metrics["VPQ_n"]["1"]["VPQ"] is not None and metrics["SQ"] is not None
    # the same --out again: refused without --exist-ok, replaced with it
    code, _, err = _run(capsys, "infer", "--task", "vps", "--input", str(gt), "--weights", str(weights), "--out",
                        str(out), "--no-overlay")
    assert code == 2 and "holds the outputs of another run" in err and "--exist-ok" in err
    code, _, err = _run(capsys, "infer", "--task", "vps", "--input", str(gt), "--weights", str(weights), "--out",
                        str(out), "--no-overlay", "--exist-ok")
    assert code == 0, err


def test_vss_infer_writes_label_maps_that_eval_scores(weights, layouts, tmp_path, capsys):
    split, out = layouts["vss"], tmp_path / "vss"
    code, _, err = _run(capsys, "infer", "--task", "vss", "--input", str(split), "--weights", str(weights),
                        "--out", str(out), "--no-overlay")
    assert code == 0, err
    (name,) = split.read_text().split()
    pngs = sorted((out / name).glob("*.png"))
    assert len(pngs) == 4 and all(read_label_png(p).max() < NUM_CLASSES for p in pngs)
    code, _, err = _run(capsys, "eval", "--task", "vss", "--gt", str(split.parent), "--split", "val", "--pred",
                        str(out))
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mIoU"] is not None and 0.0 <= metrics["mIoU"] <= 100.0 and metrics["scale"] == 100


@pytest.mark.parametrize("task, argv, message", [
    ("vps", ["--mode", "offline", "--tracker", "minvis"], r"--tracker minvis is an online association"),
    ("vss", ["--max-memory-gb", "1"], r"--max-memory-gb applies to --mode offline only"),
    ("vss", ["--score-thr", "0.3"], r"--score-thr applies to --task vis only"),
    ("swap", [], r"--task vps reads a VIPSeg panoptic json"),
], ids=["offline_minvis", "memory_online", "score_thr", "wrong_layout"])
def test_bad_input_is_one_line_exit_2(weights, layouts, tmp_path, capsys, task, argv, message):
    source = layouts["vss"] if task == "swap" else layouts[task]
    code, _, err = _run(capsys, "infer", "--task", "vps" if task == "swap" else task, "--input", str(source),
                        "--weights", str(weights), "--out", str(tmp_path / "o"), "--no-overlay", *argv)
    line = err.strip().splitlines()[-1] if err.strip() else ""
    assert code == 2 and line.startswith("spvis infer: error: ") and re.search(message, line), err
    assert "Traceback" not in err


@pytest.mark.parametrize("tracker", ["minvis", "pgt"])
def test_other_associations_write_scorable_submissions(weights, layouts, tmp_path, capsys, tracker):
    """The association is the VIS path's: MinVIS (segmenter alone) and PGT (M tracks, none before its first
    detection: the random model's queries stay below its detection score) work unchanged."""
    out = tmp_path / tracker
    code, _, err = _run(capsys, "infer", "--task", "vps", "--tracker", tracker, "--input", str(layouts["vps"]),
                        "--weights", str(weights), "--out", str(out), "--no-overlay", *LOOSE)
    assert code == 0, err
    code, _, err = _run(capsys, "eval", "--task", "vps", "--gt", str(layouts["vps"]), "--pred", str(out))
    assert code == 0, err


def _outputs(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): np.asarray(read_id_png(p) if "pan_pred" in p.parts else read_label_png(p))
            for p in sorted(out.rglob("*.png"))}


@pytest.mark.parametrize("task", ["vps", "vss"])
def test_offline_scores_and_does_not_depend_on_the_memory_budget(weights, layouts, tmp_path, capsys, task):
    """--mode offline (refiner, per-video rule): eval scores it; caching every frame's features or none (0 GB:
    recomputed for each decoding pass) writes the same files."""
    runs = {}
    for budget in ("4", "0"):
        out = tmp_path / f"{task}_{budget}"
        code, _, err = _run(capsys, "infer", "--task", task, "--mode", "offline", "--max-memory-gb", budget,
                            "--input", str(layouts[task]), "--weights", str(weights), "--out", str(out),
                            "--no-overlay", *LOOSE)
        assert code == 0, err
        runs[budget] = out
    cached, recomputed = _outputs(runs["4"]), _outputs(runs["0"])
    assert cached.keys() == recomputed.keys() and len(cached) == 4
    for name in cached:
        np.testing.assert_array_equal(cached[name], recomputed[name], err_msg=name)
    if task == "vps":
        assert (runs["4"] / "pred.json").read_text() == (runs["0"] / "pred.json").read_text()
        assert any(len(np.unique(a)) > 1 for a in cached.values())  # segments were drawn
        argv = ["eval", "--task", "vps", "--gt", str(layouts["vps"]), "--pred", str(runs["4"])]
    else:
        argv = ["eval", "--task", "vss", "--gt", str(layouts["vss"].parent), "--pred", str(runs["4"])]
    code, _, err = _run(capsys, *argv)
    assert code == 0 and json.loads((runs["4"] / "metrics.json").read_text())["scale"] == 100, err


def test_a_dataset_with_other_classes_than_the_model_is_one_line(weights, layouts, tmp_path, capsys):
    data = json.loads(layouts["vps"].read_text())
    data["categories"].append({"id": 99, "name": "extra", "isthing": 0})
    other = tmp_path / "panoptic_gt_VIPSeg_val.json"
    other.write_text(json.dumps(data))
    code, _, err = _run(capsys, "infer", "--task", "vps", "--input", str(other), "--image-root",
                        str(layouts["vps"].parent / "images"), "--weights", str(weights), "--out", str(tmp_path / "o"))
    assert code == 2 and re.search(r"^spvis infer: error: \S+panoptic_gt_VIPSeg_val\.json: field 'categories': 7 "
                                   r"categories but the model predicts MODEL\.NUM_CLASSES = 6$", err.strip()), err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def _frame(index: int, pixels: list[list[int]], tracks: list[int], labels: list[int], things: list[bool]):
    return PanopticFrame(index, torch.tensor(pixels), torch.tensor(tracks), torch.tensor(labels),
                         torch.ones(len(tracks)), torch.tensor(things))


def test_stuff_ids_are_per_class_and_thing_ids_per_track_over_the_video():
    ids = VideoSegmentIds()
    # frame 0: two stuff queries of class 3 (tracks 10, 11), a thing (class 0, track 5), one VOID pixel
    first = panoptic_to_host(_frame(0, [[0, 1, 2, -1]], [10, 11, 5], [3, 3, 0], [False, False, True]), ids)
    assert first.ids.tolist() == [[1, 1, 2, 0]]
    assert first.segments == [{"id": 1, "label": 3, "isthing": False}, {"id": 2, "label": 0, "isthing": True}]
    # frame 1: class 3 comes from another query, the thing's track is back, a new thing track appears
    second = panoptic_to_host(_frame(1, [[2, 0, 1, 0]], [7, 5, 9], [3, 0, 0], [False, True, True]), ids)
    assert second.ids.tolist() == [[3, 1, 2, 1]]  # segments 0, 1, 2 -> ids 1 (class 3), 2 (track 5), 3 (new)
    assert [s["id"] for s in second.segments] == [1, 2, 3]  # stuff first, then things
