"""Tracking metrics: equal to TrackEval 1.3.0 on stored cases, and hand-computed toy sequences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spvis.evaluation.ground_truth import load_ground_truth
from spvis.evaluation.results_io import load_results
from spvis.evaluation.synthetic import box_rle
from spvis.evaluation.tracking import evaluate_tracking

DATA = Path(__file__).parent / "data" / "eval"
H, W = 20, 40
# four disjoint boxes: identical box = IoU 1, different boxes = IoU 0
BOXES = [(0, 0, 10, 10), (10, 0, 20, 10), (20, 0, 30, 10), (30, 0, 40, 10)]


def _video(vid: int, num_frames: int) -> dict:
    return {"id": vid, "height": H, "width": W, "length": num_frames,
            "file_names": [f"vid{vid}/{t}.jpg" for t in range(num_frames)]}


def _track(box_per_frame: list) -> list:
    return [None if b is None else box_rle(H, W, BOXES[b]) for b in box_per_frame]


def _gt(num_frames: int, tracks: list[list], *, cat: int = 1) -> dict:
    anns = [{"id": i + 1, "video_id": 1, "category_id": cat, "iscrowd": 0, "segmentations": _track(t),
             "areas": [None if b is None else 100 for b in t]} for i, t in enumerate(tracks)]
    return {"videos": [_video(1, num_frames)], "categories": [{"id": 1, "name": "a"}], "annotations": anns}


def _pred(tracks: list[list], scores: list[float] | None = None) -> list[dict]:
    scores = scores or [0.9] * len(tracks)
    return [{"video_id": 1, "category_id": 1, "score": s,
             "segmentations": [box_rle(H, W, BOXES[b] if b is not None else None) for b in t]}
            for t, s in zip(tracks, scores)]


def _metrics(gt: dict, preds: list[dict], thr: float = 0.5) -> dict:
    g = load_ground_truth(gt)
    return evaluate_tracking(g, load_results(preds, g), score_threshold=thr)["pooled"]


@pytest.mark.parametrize("case", ["blobs", "boxes"])
@pytest.mark.parametrize("thr", ["0.0", "0.5"])
def test_equals_trackeval(case, thr):
    expected = json.loads((DATA / f"{case}_trackeval.json").read_text())[thr]
    g = load_ground_truth(DATA / f"{case}_gt.json")
    ours = evaluate_tracking(g, load_results(DATA / f"{case}_results.json", g), score_threshold=float(thr))
    for combo in ("class_avg", "pooled"):
        for key, value in expected[combo].items():
            assert ours[combo][key] == pytest.approx(value, abs=1e-12), (combo, key)
    assert expected["pooled"]["CLR_TP"] > 0 and expected["pooled"]["HOTA"] > 0  # the cases are not trivial


def test_two_track_swap():
    # GT a, b over 4 frames; prediction X follows a then b, Y follows b then a
    gt = _gt(4, [[0, 0, 0, 0], [1, 1, 1, 1]])
    m = _metrics(gt, _pred([[0, 0, 1, 1], [1, 1, 0, 0]]))
    assert m["DetA"] == 1.0 and m["LocA"] == pytest.approx(1.0)
    # every (gt, pred) pair co-occurs 2 of 4 frames: AssA = sum c * c / (4 + 4 - c) / TP = 4 * 2 * 2/6 / 8
    assert m["AssA"] == pytest.approx(1 / 3, abs=1e-12)
    assert m["HOTA"] == pytest.approx(np.sqrt(1 / 3), abs=1e-12)
    assert m["IDSW"] == 2 and m["MOTA"] == pytest.approx((8 - 0 - 2) / 8)
    assert (m["MT"], m["PT"], m["ML"], m["Frag"]) == (2, 0, 0, 0)
    assert (m["IDTP"], m["IDFN"], m["IDFP"]) == (4, 4, 4) and m["IDF1"] == pytest.approx(0.5)


def test_perfect_tracking():
    gt = _gt(3, [[0, 0, None], [1, 1, 1]])
    m = _metrics(gt, _pred([[0, 0, None], [1, 1, 1]]))
    for key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "MOTP"):
        assert m[key] == pytest.approx(1.0, abs=1e-12), key
    assert m["IDSW"] == 0 and m["CLR_FP"] == 0 and m["CLR_FN"] == 0


def test_mt_pt_ml_boundaries_and_frag():
    # 10 frames; tracked in 9 (0.9 > 0.8: MT), 8 (0.8: PT), 2 (0.2: PT), 1 (0.1: ML)
    def partial(box: int, tracked: int) -> list:
        return [box if t < tracked else None for t in range(10)]

    gt = _gt(10, [[b] * 10 for b in range(4)])
    m = _metrics(gt, _pred([partial(0, 9), partial(1, 8), partial(2, 2), partial(3, 1)]))
    assert (m["MT"], m["PT"], m["ML"]) == (1, 2, 1)
    assert m["CLR_TP"] == 20 and m["CLR_FN"] == 20 and m["Frag"] == 0
    # tracked, lost for a frame (a false positive elsewhere in it), tracked again by the same id:
    # one fragmentation, no id switch
    gt = _gt(6, [[0] * 6])
    m = _metrics(gt, _pred([[0, 0, 0, None, 0, 0], [None, None, None, 3, None, None]]))
    assert m["Frag"] == 1 and m["IDSW"] == 0 and m["CLR_TP"] == 5 and m["CLR_FP"] == 1
    # TrackEval quirk: a frame without any prediction skips the per-frame update, so the gap is not a restart
    m = _metrics(gt, _pred([[0, 0, 0, None, 0, 0]]))
    assert m["Frag"] == 0 and m["CLR_TP"] == 5


def test_id_switch_counts_against_last_match_any_frame_before():
    # X tracks a in frames 0-1, nobody in frame 2 (a false positive elsewhere), Y in frame 3:
    # one switch despite the gap, and one restart
    gt = _gt(4, [[0, 0, 0, 0]])
    m = _metrics(gt, _pred([[0, 0, None, None], [None, None, None, 0], [None, None, 2, None]]))
    assert m["IDSW"] == 1 and m["Frag"] == 1 and m["CLR_FN"] == 1 and m["MOTA"] == pytest.approx((3 - 1 - 1) / 4)


def test_score_threshold_and_empty_masks():
    gt = _gt(2, [[0, 0]])
    low = _pred([[0, 0]], scores=[0.4])
    assert _metrics(gt, low, thr=0.5)["CLR_TP"] == 0
    assert _metrics(gt, low, thr=0.4)["CLR_TP"] == 2
    # an empty-mask frame is not a detection (no FP), unlike raw TrackEval
    empty = [{"video_id": 1, "category_id": 1, "score": 0.9,
              "segmentations": [box_rle(H, W, BOXES[0]), box_rle(H, W, None)]}]
    m = _metrics(gt, empty)
    assert (m["CLR_TP"], m["CLR_FN"], m["CLR_FP"]) == (1, 1, 0)


def test_class_average_includes_empty_classes():
    gt = _gt(2, [[0, 0]])
    gt["categories"].append({"id": 2, "name": "never seen"})
    g = load_ground_truth(gt)
    out = evaluate_tracking(g, load_results(_pred([[0, 0]]), g))
    assert out["pooled"]["HOTA"] == pytest.approx(1.0)
    assert out["class_avg"]["HOTA"] == pytest.approx(0.5)  # the empty class adds a zero, as in TrackEval
    assert out["class_avg"]["MOTA"] == pytest.approx(0.5)
