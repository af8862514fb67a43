"""Long videos end to end: tracks longer than 255 frames, and a 600-frame video through every command.

pycocotools 2.0.x ``area()`` raises OverflowError on a list of 256+ RLEs with numpy 2, so any ground-truth
track visible in 256 or more frames used to stop ``spvis eval`` (and the training eval hook). The fast path
here runs a 600-frame video at 32x48 through ``data check``, online and offline ``infer``, ``eval`` and the
overlay writer; the slow variant does the same at 2,000 frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.checkpoints import save_weights
from spvis.cli.main import main
from spvis.config import load_config
from spvis.data.rle import AREA_CHUNK, encode_mask, rle_areas
from spvis.data.synth import generate_synthetic_dataset
from spvis.evaluation import evaluate
from spvis.evaluation.ground_truth import load_ground_truth
from spvis.modeling.meta_arch import SPVISModel

REPO = Path(__file__).resolve().parents[1]
TINY = ["MODEL.DEVICE=cpu", "MODEL.NUM_CLASSES=3", "MODEL.BACKBONE.WIDTH=8", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.PIXEL_DECODER.ENC_FFN=64",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.DECODER.NUM_QUERIES=6", "MODEL.DECODER.DIM_FEEDFORWARD=64",
        "MODEL.DECODER.DEC_LAYERS=1", "MODEL.TRACKER.DECODER_LAYERS=1", "MODEL.REFINER.ENABLED=True",
        "MODEL.REFINER.DECODER_LAYERS=1", "INPUT.MIN_SIZE_TEST=32", "INPUT.MAX_SIZE_TEST=48"]


def _moving_square_gt(frames: int, height: int = 24, width: int = 32) -> dict:
    """One video, one square visible on every frame (a ground-truth track of ``frames`` non-empty frames)."""
    segs, areas, boxes = [], [], []
    for t in range(frames):
        mask = np.zeros((height, width), dtype=bool)
        x = t % (width - 8)
        mask[4:4 + 6 + t % 3, x:x + 8] = True
        segs.append(encode_mask(mask))
        areas.append(int(mask.sum()))
        ys, xs = np.nonzero(mask)
        boxes.append([float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)])
    return {"videos": [{"id": 1, "width": width, "height": height, "length": frames,
                        "file_names": [f"v/{t:05d}.jpg" for t in range(frames)]}],
            "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": segs,
                             "areas": areas, "bboxes": boxes}],
            "categories": [{"id": 1, "name": "square"}]}


def test_rle_areas_beyond_pycocotools_list_limit():
    masks = [np.zeros((5, 7), dtype=bool) for _ in range(3 * AREA_CHUNK + 5)]
    for i, m in enumerate(masks):
        m.flat[: i % 35] = True
    rles = [{"size": [5, 7], "counts": encode_mask(m)["counts"].encode()} for m in masks]
    assert rle_areas(rles).tolist() == [int(m.sum()) for m in masks]
    with pytest.raises(OverflowError):  # the pycocotools behaviour the helper works around (numpy 2)
        mask_utils.area(rles[:300])


@pytest.mark.parametrize("frames", [256, 300])
def test_ground_truth_track_longer_than_255_frames_loads_and_scores(tmp_path, frames):
    gt = _moving_square_gt(frames)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    loaded = load_ground_truth(path)
    track = loaded.tracks_by_video[1][0]
    assert track.frame_areas.tolist() == gt["annotations"][0]["areas"]
    perfect = [{"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": gt["annotations"][0]["segmentations"]}]
    metrics = evaluate(path, perfect)
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["tracking"]["pooled"]["IDF1"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", TINY)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(path, SPVISModel.from_config(cfg), cfg)
    return path


def _run_long_video(root: Path, weights: Path, frames: int) -> None:
    info = generate_synthetic_dataset(root / "data", videos=1, frames=frames, size=(32, 48), categories=3,
                                      max_objects=2, occlusion="heavy", valid_fraction=0.0, seed=5)
    gt_json, image_root = info["train_json"], info["train_image_root"]
    gt = json.loads(Path(gt_json).read_text())
    longest = max(sum(s is not None for s in a["segmentations"]) for a in gt["annotations"])
    assert longest > 255  # the case that used to crash evaluation
    assert main(["data", "check", gt_json, "--image-root", image_root]) == 0
    for mode in ("online", "offline"):
        out = root / mode
        assert main(["infer", "--input", gt_json, "--image-root", image_root, "--weights", str(weights),
                     "--mode", mode, "--out", str(out)]) == 0
        entries = json.loads((out / "results.json").read_text())
        assert entries and all(len(e["segmentations"]) == frames for e in entries)
        with av.open(str(out / "1.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == frames
        assert main(["eval", "--gt", gt_json, "--pred", str(out / "results.json"), "--out",
                     str(out / "metrics.json")]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["info"]["num_videos"] == 1
    # the ground truth itself, submitted as results, is perfect however long the tracks are
    perfect = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 1.0,
                "segmentations": a["segmentations"]} for a in gt["annotations"]]
    metrics = evaluate(gt_json, perfect)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["tracking"]["pooled"]["IDF1"] == pytest.approx(1.0)


@pytest.mark.slow
def test_600_frame_video_through_check_infer_eval_and_overlays(tmp_path, tiny_weights):
    _run_long_video(tmp_path, tiny_weights, 600)


@pytest.mark.slow
def test_2000_frame_video_through_check_infer_eval_and_overlays(tmp_path, tiny_weights):
    _run_long_video(tmp_path, tiny_weights, 2000)
