"""STQ / AQ / SQ (VIPSeg / DVIS eval_stq_vspw.py + numpy STQuality rules, reference §4): every quirk by hand and a
naive pixel-loop reference on random videos."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_eval_vps import listing, random_case

from spvis.data.vipseg import Category, Segment
from spvis.evaluation.panoptic_io import video_tables
from spvis.evaluation.stq import STQAccumulator

A, B, D = 0, 1, 2  # A thing, B stuff, D stuff
CATS = [Category(A, "a", True), Category(B, "b", False), Category(D, "d", False)]
GCATS = {20: B, 10: A, 11: A, 12: A}
PCATS = {6: B, 5: A, 8: A, 7: D}


def score(videos, categories=CATS) -> dict:
    acc = STQAccumulator(categories)
    index = {c.id: i for i, c in enumerate(categories)}
    for gt, gseg, pred, pseg in videos:
        acc.add(video_tables(gt, gseg, pred, pseg, index))
    return acc.result()


def video(gt: np.ndarray, gorder: list[int], pred: np.ndarray, porder: list[int], *, crowd=()):
    return ([gt], [listing(gt, GCATS, order=gorder, crowd=crowd)], [pred], [listing(pred, PCATS, order=porder)])


GT = np.array([[20] * 4, [10] * 4])  # stuff row, thing row
PERFECT = np.array([[6] * 4, [5] * 4])


def test_first_listed_thing_is_instance_zero_and_crowd():
    # GT lists 10 first: instance numbers 10 -> 0, 20 -> 1; thing pixels with instance 0 are crowd, so there is no GT
    # tube: AQ = 0 / max(0, 1e-15) = 0 and STQ = sqrt(0 x 1) = 0 although the prediction is perfect
    r = score([video(GT, [10, 20], PERFECT, [6, 5])])
    assert r["AQ"] == 0.0 and r["SQ"] == pytest.approx(100.0) and r["STQ"] == 0.0
    # listing the stuff first makes the thing instance 1: AQ = 4 x (4/4) / 4 = 1
    r = score([video(GT, [20, 10], PERFECT, [6, 5])])
    assert r["AQ"] == pytest.approx(100.0) and r["STQ"] == pytest.approx(100.0)


def test_prediction_instance_zero_thing_still_counts():
    # the prediction lists its thing first (instance 0): still an ordinary prediction id, AQ stays 1
    r = score([video(GT, [20, 10], PERFECT, [5, 6])])
    assert r["AQ"] == pytest.approx(100.0) and r["STQ"] == pytest.approx(100.0)


def test_gt_crowd_region_is_masked_out_of_the_prediction_too():
    gt = np.array([[20] * 4, [10] * 4, [11] * 4])  # 10 listed first -> instance 0 -> crowd; 11 -> instance 2
    pred = np.array([[6] * 4, [5] * 4, [5] * 4])  # one thing over both rows
    # pred 5 outside the crowd row has 4 px -> IoU(11, 5) = 4 / (4 + 4 - 4) = 1 -> AQ = 1 (unmasked: 4/8 -> 0.5)
    r = score([video(gt, [10, 20, 11], pred, [6, 5])])
    assert r["AQ"] == pytest.approx(100.0) and r["SQ"] == pytest.approx(100.0)


def test_ignore_column_counts_as_a_class():
    gt = np.full((2, 4), 20)  # all stuff B
    pred = np.array([[6] * 4, [0] * 4])  # half B, half unassigned (VOID -> semantic 255)
    # B: inter 4, union 4 + 8 - 4 = 8 -> 0.5; the ignore column has union 4 > 0 and IoU 0 -> SQ = (0.5 + 0) / 2
    r = score([video(gt, [20], pred, [6])])
    assert r["SQ"] == pytest.approx(25.0, abs=1e-12)
    assert r["AQ"] == 0.0 and r["STQ"] == 0.0  # no thing at all


def test_classes_only_predicted_count():
    gt = np.full((2, 4), 20)
    pred = np.array([[6] * 4, [7] * 4])  # half B, half stuff D (absent from GT)
    # B: 4 / 8 = 0.5; D: inter 0, union 4 -> 0 -> SQ = 0.25 (VSPW's mIoU would give 0.5)
    assert score([video(gt, [20], pred, [6, 7])])["SQ"] == pytest.approx(25.0, abs=1e-12)


def test_association_term_is_tpa_times_iou_over_gt_size():
    pred = np.array([[6] * 4, [5, 5, 5, 8]])
    # GT tube 10 (4 px) split over preds 5 (3 px) and 8 (1 px): AQ = (1/4)(3 x 3/4 + 1 x 1/4) = 10/16
    r = score([video(GT, [20, 10], pred, [6, 5, 8])])
    assert r["AQ"] == pytest.approx(100 * 10 / 16, abs=1e-12)
    assert r["SQ"] == pytest.approx(100.0) and r["STQ"] == pytest.approx(100 * math.sqrt(10 / 16), abs=1e-12)


def test_aq_is_pooled_over_sequences():
    one = video(GT, [20, 10], PERFECT, [6, 5])  # 1 tube, AQ_seq = 1
    gt = np.array([[20] * 6, [10, 10, 11, 11, 12, 12]])
    missed = video(gt, [20, 10, 11, 12], np.array([[6] * 6, [0] * 6]), [6])  # 3 tubes, no thing predicted
    # pooled: (1 + 0) / (1 + 3) = 0.25, not the mean of per-sequence AQ (0.5)
    assert score([one, missed])["AQ"] == pytest.approx(25.0, abs=1e-12)


def test_instances_are_numbered_over_the_whole_video():
    first = np.full((2, 4), 20)
    frames = ([first, GT], [listing(first, GCATS), listing(GT, GCATS, order=[10, 20])],
              [np.full((2, 4), 6), PERFECT], [listing(np.full((2, 4), 6), PCATS), listing(PERFECT, PCATS, order=[5, 6])])
    # 20 appears first (frame 0) -> 0, 10 -> 1 although frame 1 lists 10 first: 10 is no crowd, AQ = 1
    r = score([frames])
    assert r["AQ"] == pytest.approx(100.0) and r["STQ"] == pytest.approx(100.0)


def test_iscrowd_plays_no_role():
    r = score([video(GT, [20, 10], PERFECT, [6, 5], crowd=(10,))])
    assert r["AQ"] == pytest.approx(100.0) and r["STQ"] == pytest.approx(100.0)


def test_last_entry_of_an_id_sets_its_semantic():
    gt = np.full((2, 4), 20)
    gl = [[Segment(20, D, 0, 8.0), Segment(20, B, 0, 8.0)]]  # listed twice: painted D, then B
    pred = np.full((2, 4), 6)
    assert score([([gt], gl, [pred], [listing(pred, PCATS)])])["SQ"] == pytest.approx(100.0)


# -------------------------------------------------------------------------------------------------------------
# naive reference (written from reference §4: painted label maps, one loop per pixel, the official 124 classes)


def naive_stq(videos, categories, num_classes: int = 124, ignore: int = 255) -> dict:
    things = {c.id for c in categories if c.isthing}
    conf = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    aq_total, tubes_total = 0.0, 0

    def numbering(lists):
        order: dict[int, int] = {}
        for segments in lists:
            for s in segments:
                order.setdefault(s.id, len(order))
        return order

    def paint(frame, segments, number):
        semantic = np.full(frame.shape, ignore)
        instance = np.full(frame.shape, ignore)
        for s in segments:
            semantic[frame == s.id] = s.category_id
            instance[frame == s.id] = number[s.id]
        return semantic, instance

    for gt_frames, gt_lists, pred_frames, pred_lists in videos:
        g_num, p_num = numbering(gt_lists), numbering(pred_lists)
        gt_size: dict[int, int] = {}
        pr_size: dict[int, int] = {}
        inter: dict[tuple[int, int], int] = {}
        for t in range(len(gt_frames)):
            gs, gi = paint(gt_frames[t], gt_lists[t], g_num)
            ps, pi = paint(pred_frames[t], pred_lists[t], p_num)
            for y in range(gs.shape[0]):
                for x in range(gs.shape[1]):
                    a, b = int(gs[y, x]), int(ps[y, x])
                    conf[num_classes if a == ignore else a, num_classes if b == ignore else b] += 1
                    crowd = a in things and gi[y, x] == 0
                    in_g, in_p = a in things and not crowd, b in things and not crowd
                    g_label, p_label = (a << 16) + int(gi[y, x]), (b << 16) + int(pi[y, x])
                    if in_g:
                        gt_size[g_label] = gt_size.get(g_label, 0) + 1
                    if in_p:
                        pr_size[p_label] = pr_size.get(p_label, 0) + 1
                    if in_g and in_p:
                        inter[(g_label, p_label)] = inter.get((g_label, p_label), 0) + 1
        aq = 0.0
        for g, size_g in gt_size.items():
            inner = 0.0
            for p, size_p in pr_size.items():
                tpa = inter.get((g, p), 0)
                if tpa:
                    inner += tpa * (tpa / (size_g + size_p - tpa))
            aq += inner / size_g
        aq_total += aq
        tubes_total += len(gt_size)
    conf[num_classes, :] = 0
    ious = []
    for k in range(num_classes + 1):
        tp = conf[k, k]
        union = conf[:, k].sum() + conf[k, :].sum() - tp
        if union > 0:
            ious.append(tp / union)
    sq = sum(ious) / len(ious)
    aq = aq_total / max(tubes_total, 1e-15)
    return {"STQ": 100 * math.sqrt(aq * sq), "AQ": 100 * aq, "SQ": 100 * sq}


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_equals_naive_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    case, cats = random_case(rng, videos=int(rng.integers(1, 5)))
    fast, slow = score(case, cats), naive_stq(case, cats)
    for key in ("STQ", "AQ", "SQ"):
        assert abs(fast[key] - slow[key]) <= 1e-9, (key, fast[key], slow[key])


def test_random_cases_reach_both_sides_of_the_crowd_quirk():
    """The comparison above is only meaningful if the random videos hit AQ > 0 and the instance-0 rule."""
    aqs, crowd_first = [], 0
    for seed in range(40):
        case, cats = random_case(np.random.default_rng(1000 + seed), videos=2)
        aqs.append(score(case, cats)["AQ"])
        crowd_first += sum(cats[v[1][0][0].category_id].isthing for v in case if v[1][0])
    assert sum(a > 0 for a in aqs) > 20 and crowd_first > 5
