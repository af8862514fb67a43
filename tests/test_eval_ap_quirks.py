"""Video AP/AR: each official quirk (reference §1.4-§1.8) on a hand-built case with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from spvis.evaluation.ground_truth import load_ground_truth
from spvis.evaluation.results_io import load_results
from spvis.evaluation.synthetic import box_rle
from spvis.evaluation.video_iou import video_ious
from spvis.evaluation.vis_ap import evaluate_ap

H, W = 20, 40
EPS = np.spacing(1)
FULL, LEFT, RIGHT, QUARTER = (0, 0, 40, 20), (0, 0, 20, 20), (20, 0, 40, 20), (0, 0, 20, 10)
OTHER = (0, 0, 8, 8)


def _videos(n: int, frames: int = 2) -> list[dict]:
    return [{"id": v, "height": H, "width": W, "length": frames, "file_names": [f"v{v}/{t}.jpg" for t in range(frames)]}
            for v in range(1, n + 1)]


def _ann(aid: int, vid: int, boxes: list, *, cat: int = 1, crowd: int = 0, areas: list | None = None) -> dict:
    segs = [None if b is None else box_rle(H, W, b) for b in boxes]
    if areas is None:
        areas = [None if b is None else (b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    return {"id": aid, "video_id": vid, "category_id": cat, "iscrowd": crowd, "segmentations": segs, "areas": areas}


def _res(vid: int, boxes: list, score: float, *, cat: int = 1) -> dict:
    return {"video_id": vid, "category_id": cat, "score": score,
            "segmentations": [None if b is None else box_rle(H, W, b) for b in boxes]}


def _eval(videos: list, anns: list, results: list, cats: tuple = (1,)):
    gt = load_ground_truth({"videos": videos, "annotations": anns,
                            "categories": [{"id": c, "name": f"c{c}"} for c in cats]})
    return evaluate_ap(gt, load_results(results, gt))


def test_perfect_result_is_one_minus_eps():
    # one true positive per category: precision 1 / (1 + eps) = 0.9999999999999998 everywhere
    out = _eval(_videos(2), [_ann(1, 1, [FULL, LEFT])], [_res(1, [FULL, LEFT], 0.9)])
    assert out.stats["AP"] == 0.9999999999999998
    assert out.stats["AR100"] == 1.0 and out.stats["AP50"] == pytest.approx(1.0, abs=1e-15)
    # with two true positives 2 / (2 + eps) rounds to exactly 1 and the envelope lifts the first point
    out = _eval(_videos(2), [_ann(1, 1, [FULL, LEFT]), _ann(2, 2, [None, RIGHT])],
                [_res(1, [FULL, LEFT], 0.9), _res(2, [None, RIGHT], 0.8)])
    assert out.stats["AP"] == 1.0


def test_spatio_temporal_iou_sums_over_frames():
    gt = [[box_rle(H, W, FULL), box_rle(H, W, LEFT), None]]
    dt = [[box_rle(H, W, LEFT), None, box_rle(H, W, QUARTER)]]
    # frame 0: I 400 U 800; frame 1: GT only, U 400; frame 2: prediction only, U 200
    ious = video_ious(dt, np.array([[400, 0, 200]]), gt, np.array([[800, 400, 0]]))
    assert ious[0, 0] == 400 / (800 + 400 + 200)


def test_crowd_gt_uses_plain_iou_and_is_ignored():
    gt = [[box_rle(H, W, FULL)]]
    dt = [[box_rle(H, W, QUARTER)]]
    assert video_ious(dt, np.array([[200]]), gt, np.array([[800]]))[0, 0] == 0.25  # not intersection / det area
    # a higher-scored prediction matching a crowd track is ignored, not a false positive
    videos = _videos(1, 1)
    anns = [_ann(1, 1, [LEFT]), _ann(2, 1, [RIGHT], crowd=1)]
    out = _eval(videos, anns, [_res(1, [RIGHT], 0.9), _res(1, [RIGHT], 0.85), _res(1, [LEFT], 0.8)])
    assert out.stats["AP"] == pytest.approx(1 - EPS / 2, abs=1e-15)  # 1 / (1 + eps) at every recall
    # with only crowd GT the category is undefined
    out = _eval(videos, [_ann(2, 1, [RIGHT], crowd=1)], [_res(1, [RIGHT], 0.9)])
    assert out.stats["AP"] == -1 and out.stats["AR100"] == -1


def test_gt_id_zero_never_counts_as_matched():
    videos = _videos(1)
    out = _eval(videos, [_ann(0, 1, [FULL, FULL])], [_res(1, [FULL, FULL], 0.9)])
    assert out.stats["AP"] == 0.0 and out.stats["AR100"] == 0.0
    out = _eval(videos, [_ann(7, 1, [FULL, FULL])], [_res(1, [FULL, FULL], 0.9)])
    assert out.stats["AP"] == 0.9999999999999998


def test_ties_keep_video_then_file_order():
    # two videos, one GT in video 2; equal scores: video 1's false positive ranks first
    videos = _videos(2)
    anns = [_ann(1, 2, [LEFT, LEFT])]
    tie = _eval(videos, anns, [_res(2, [LEFT, LEFT], 0.5), _res(1, [RIGHT, RIGHT], 0.5)])
    assert tie.stats["AP"] == pytest.approx(1 / (2 + EPS), abs=0)
    # inside one video the file order decides
    anns = [_ann(1, 1, [LEFT, LEFT])]
    first_wrong = _eval(videos, anns, [_res(1, [RIGHT, RIGHT], 0.5), _res(1, [LEFT, LEFT], 0.5)])
    first_right = _eval(videos, anns, [_res(1, [LEFT, LEFT], 0.5), _res(1, [RIGHT, RIGHT], 0.5)])
    assert first_wrong.stats["AP"] == pytest.approx(1 / (2 + EPS), abs=0)
    assert first_right.stats["AP"] == 0.9999999999999998


def test_max_dets_truncation():
    videos = _videos(1)
    anns = [_ann(1, 1, [LEFT, LEFT])]
    results = [_res(1, [OTHER, OTHER], 0.9 - 0.01 * i) for i in range(10)] + [_res(1, [LEFT, LEFT], 0.1)]
    out = _eval(videos, anns, results)
    assert (out.stats["AR1"], out.stats["AR10"], out.stats["AR100"]) == (0.0, 0.0, 1.0)
    assert out.stats["AP"] == pytest.approx(1 / 11, rel=1e-15)


def test_area_range_boundaries_use_the_gt_areas_field():
    videos = _videos(1, 1)
    # area exactly 128^2 belongs to small and medium (inclusive bounds)
    out = _eval(videos, [_ann(1, 1, [LEFT], areas=[128 ** 2])], [_res(1, [LEFT], 0.9)])
    assert out.stats["APs"] == out.stats["APm"] == 0.9999999999999998 and out.stats["APl"] == -1
    # a 400-pixel mask whose json area says 70000 is a large track
    out = _eval(videos, [_ann(1, 1, [LEFT], areas=[70000])], [_res(1, [LEFT], 0.9)])
    assert out.stats["APl"] == 0.9999999999999998 and out.stats["APs"] == -1
    # null and zero entries are dropped from the mean: (300 + 500) / 2 = 400
    videos = _videos(1, 3)
    out = _eval(videos, [_ann(1, 1, [LEFT, LEFT, None], areas=[128 ** 2 - 100, 128 ** 2 + 100, 0])],
                [_res(1, [LEFT, LEFT, None], 0.9)])
    assert out.stats["APs"] > 0 and out.stats["APm"] > 0


def test_unmatched_out_of_range_prediction_is_ignored():
    # GT large (json area 70000); an unmatched 800-pixel prediction is outside "large": ignored there,
    # but a false positive in "all"
    videos = _videos(1, 1)
    anns = [_ann(1, 1, [OTHER], areas=[70000])]
    out = _eval(videos, anns, [_res(1, [FULL], 0.9), _res(1, [OTHER], 0.8)])
    assert out.stats["APl"] == 0.9999999999999998
    assert out.stats["AP"] == pytest.approx(1 / (2 + EPS), abs=0)


def test_null_and_empty_frames_are_equivalent():
    videos = _videos(1, 3)
    anns = [_ann(1, 1, [LEFT, None, LEFT])]
    with_null = _eval(videos, anns, [_res(1, [LEFT, None, QUARTER], 0.9)])
    empty = _res(1, [LEFT, None, QUARTER], 0.9)
    empty["segmentations"][1] = box_rle(H, W, None)
    with_empty = _eval(videos, anns, [empty])
    assert with_null.stats == with_empty.stats
    assert with_null.stats["AP50"] == pytest.approx(1.0, abs=1e-15)  # IoU (400 + 200) / (400 + 400) = 0.75


def test_videos_without_results_and_categories_without_gt():
    videos = _videos(2)
    anns = [_ann(1, 1, [LEFT, LEFT]), _ann(2, 2, [LEFT, LEFT])]
    out = _eval(videos, anns, [_res(1, [LEFT, LEFT], 0.9), _res(1, [RIGHT, RIGHT], 0.95, cat=2)], cats=(1, 2))
    assert out.stats["AR100"] == 0.5  # video 2 adds a false negative
    assert out.per_category_ap[2] == -1  # category 2 has predictions but no GT: dropped from the mean
    assert out.stats["AP"] == out.per_category_ap[1]


def test_empty_result_list_gives_zero_not_a_crash():
    out = _eval(_videos(1), [_ann(1, 1, [LEFT, LEFT])], [])
    assert out.stats["AP"] == 0.0 and out.stats["AR100"] == 0.0 and out.stats["APm"] == -1


def test_order_of_distinct_scores_in_file_does_not_matter():
    rng = np.random.default_rng(0)
    videos = _videos(3)
    anns = [_ann(1, 1, [LEFT, LEFT]), _ann(2, 2, [RIGHT, RIGHT]), _ann(3, 3, [QUARTER, None])]
    boxes = [FULL, LEFT, RIGHT, QUARTER, OTHER]
    results = [_res(int(rng.integers(1, 4)), [boxes[rng.integers(5)], boxes[rng.integers(5)]], float(s))
               for s in rng.permutation(np.linspace(0.1, 0.9, 12))]
    base = _eval(videos, anns, results).stats
    shuffled = [results[i] for i in rng.permutation(len(results))]
    assert _eval(videos, anns, shuffled).stats == base
    assert all(-1 <= v <= 1 for v in base.values())


def test_ovis_occlusion_buckets():
    videos = _videos(2, 3)
    light = dict(_ann(1, 1, [LEFT] * 3), occlusion=["no_occlusion", "slight_occlusion", "no_occlusion"])
    # top ceil(3/2) of [0, 0.75, 0.75] -> 0.75: heavy
    heavy = dict(_ann(2, 2, [RIGHT] * 3), occlusion=["severe_occlusion", "no_occlusion", "severe_occlusion"])
    out = _eval(videos, [light, heavy], [_res(1, [LEFT] * 3, 0.9)])
    assert out.stats["AP_light"] == 0.9999999999999998
    assert out.stats["AP_heavy"] == 0.0 and out.stats["AP_medium"] == -1
    assert out.stats["AR_light"] == 1.0 and out.stats["AR100"] == 0.5
    assert list(out.stats)[:9] == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AP_light", "AP_medium", "AP_heavy"]
