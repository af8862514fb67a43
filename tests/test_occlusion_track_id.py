"""End to end: an object fully hidden in a synthetic video keeps one track id in ``results.json``.

The video comes from the generator the built-in demo model was trained on (seed 0, heavy occlusion, the
layout of scripts/make_synth_data.sh). Its ground truth says, independently of the model, which object is
visible, then fully covered by another one, then visible again. ``spvis infer`` with the demo model must
write ONE entry (one track: one list of per-frame masks) that segments that object both before and after
the occlusion, with the object's category; and the video's top-scoring entries are its objects, one each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from spvis.cli.main import main
from spvis.data.synth import generate_synthetic_dataset
from spvis.data.synth_render import OCC_FULL

VIDEO_ID = 8  # seed 0: object 2 of 3 is fully hidden on frames 6-8 and visible on 0-5 and 9-11
FRAMES = 12  # frames read by infer (the generator draws 16; motion depends on the drawn length)


def _iou(gt_rle: dict | None, pred_rle: dict | None) -> float:
    if gt_rle is None or pred_rle is None:
        return 0.0
    g, p = mask_utils.decode(gt_rle).astype(bool), mask_utils.decode(pred_rle).astype(bool)
    return float((g & p).sum() / max((g | p).sum(), 1))


@pytest.fixture(scope="module")
def occluded_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("occ")
    info = generate_synthetic_dataset(root / "synth", videos=VIDEO_ID, frames=16, size="192x256",
                                      occlusion="heavy", frame_stride=2, valid_fraction=0.0, seed=0,
                                      max_objects=3)
    gt = json.loads(Path(info["train_json"]).read_text())
    gt["videos"] = [v for v in gt["videos"] if v["id"] == VIDEO_ID]
    gt["annotations"] = [a for a in gt["annotations"] if a["video_id"] == VIDEO_ID]
    for video in gt["videos"]:  # the ground truth of the frames infer reads, so evaluate can score them
        video["file_names"], video["length"] = video["file_names"][:FRAMES], FRAMES
    for ann in gt["annotations"]:
        for key in ("segmentations", "areas", "bboxes", "occlusion", "visibility"):
            ann[key] = ann[key][:FRAMES]
    one = root / "one_video.json"
    one.write_text(json.dumps(gt))
    out = root / "out"
    assert main(["infer", "--input", str(one), "--image-root", info["train_image_root"], "--out", str(out),
                 "--max-frames", str(FRAMES), "--no-overlay", "MODEL.DEVICE=cpu"]) == 0
    return gt, json.loads((out / "results.json").read_text()), one, out / "results.json"


def _hidden_run(ann: dict) -> tuple[list[int], list[int], list[int]]:
    """(visible frames before, fully hidden frames, visible frames after) of the first full occlusion."""
    vis, segs = ann["visibility"][:FRAMES], ann["segmentations"][:FRAMES]
    hidden = [f for f in range(FRAMES) if vis[f] == OCC_FULL]
    if not hidden:
        return [], [], []
    first = hidden[0]
    run = [f for f in hidden if f - first == hidden.index(f)]  # the contiguous run from `first`
    before = [f for f in range(first) if segs[f] is not None]
    after = [f for f in range(run[-1] + 1, FRAMES) if segs[f] is not None]
    return before, run, after


def test_the_ground_truth_has_an_object_hidden_then_visible_again(occluded_video):
    gt = occluded_video[0]
    runs = [_hidden_run(a) for a in gt["annotations"]]
    occluded = [r for r in runs if r[1]]
    assert len(gt["annotations"]) == 3 and len(occluded) == 1
    before, hidden, after = occluded[0]
    assert before == [0, 1, 2, 3, 4, 5] and hidden == [6, 7, 8] and after == [9, 10, 11]


def test_occluded_object_keeps_one_track_through_the_occlusion(occluded_video):
    gt, entries = occluded_video[:2]
    assert entries and all(e["video_id"] == VIDEO_ID and len(e["segmentations"]) == FRAMES for e in entries)
    ann = next(a for a in gt["annotations"] if _hidden_run(a)[1])
    before, _, after = _hidden_run(ann)
    # the track that segments the object on its last frame before the occlusion ...
    track = max(entries, key=lambda e: (_iou(ann["segmentations"][before[-1]], e["segmentations"][before[-1]]),
                                        e["score"]))
    # ... segments it on every visible frame before AND after: one track id, not a new one on re-appearance
    ious = {f: round(_iou(ann["segmentations"][f], track["segmentations"][f]), 3) for f in before + after}
    assert min(ious.values()) >= 0.5, ious
    assert track["category_id"] == ann["category_id"]
    # and no other entry takes the object over after the occlusion
    for f in after:
        best = max(entries, key=lambda e: _iou(ann["segmentations"][f], e["segmentations"][f]))
        assert best["segmentations"] == track["segmentations"], f


def test_top_entries_are_the_videos_objects_one_each_with_their_category(occluded_video):
    gt, entries = occluded_video[:2]
    anns = gt["annotations"]
    top = sorted(entries, key=lambda e: -e["score"])[:len(anns)]
    matched = []
    for ann in anns:
        visible = [f for f in range(FRAMES) if ann["segmentations"][f] is not None]
        mean_iou = [np.mean([_iou(ann["segmentations"][f], e["segmentations"][f]) for f in visible]) for e in top]
        assert max(mean_iou) >= 0.5, (ann["id"], mean_iou)
        best = int(np.argmax(mean_iou))
        matched.append(best)
        assert top[best]["category_id"] == ann["category_id"], (ann["id"], top[best]["category_id"])
    assert sorted(matched) == list(range(len(anns)))


def test_results_json_scores_as_the_matches_above_imply(occluded_video):
    """From the two tests above, by hand: each of the 3 objects (3 categories) is matched at IoU >= 0.5 by
    an entry of its category that outscores every other entry, so AP at IoU 0.5 is exactly 1; and the
    occluded object's one track means the CLEAR tracking metrics count no identity switch."""
    from spvis.evaluation import evaluate

    gt, entries, gt_path, results_path = occluded_video
    metrics = evaluate(gt_path, results_path)
    assert metrics["info"]["num_gt_tracks"] == 3 and metrics["info"]["num_results"] == len(entries)
    assert metrics["AP50"] == pytest.approx(1.0, abs=1e-12)  # 101-point interpolation sums in float
    assert metrics["tracking"]["pooled"]["IDSW"] == 0
