"""VPQ (VIPSeg / DVIS eval_vpq_vspw.py rules, reference §3): every quirk by hand, a naive loop reference on random
videos, and the ``spvis eval --task vps`` CLI with its one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spvis.cli.main import main
from spvis.data.synth_panoptic import generate_panoptic_dataset, write_perfect_vps_submission
from spvis.data.vipseg import Category, Segment
from spvis.errors import DataFormatError
from spvis.evaluation import vps as vps_module
from spvis.evaluation.panoptic_io import video_tables
from spvis.evaluation.vps import WINDOWS, VPQAccumulator

A, B, C = 0, 1, 2  # category ids: A thing, B stuff, C thing (never used: must be skipped)
CATS = [Category(A, "a", True), Category(B, "b", False), Category(C, "c", True)]


def listing(frame: np.ndarray, cats: dict[int, int], *, crowd: tuple[int, ...] = (), order: list[int] | None = None,
            areas: dict[int, list[float]] | None = None) -> list[Segment]:
    """segments_info of one frame: every non-zero id of ``frame`` with its pixel count (or the given areas)."""
    ids = order if order is not None else sorted(set(np.unique(frame).tolist()) - {0})
    out = []
    for i in ids:
        for area in (areas or {}).get(i, [float((frame == i).sum())]):
            out.append(Segment(i, cats[i], int(i in crowd), area))
    return out


def score(videos, categories=CATS, windows=WINDOWS) -> dict:
    """VPQ result of in-memory videos [(gt frames, gt listings, pred frames, pred listings)]."""
    acc = VPQAccumulator(categories, windows)
    index = {c.id: i for i, c in enumerate(categories)}
    for gt, gseg, pred, pseg in videos:
        acc.add(video_tables(gt, gseg, pred, pseg, index))
    return acc.result()


def one_frame(gt: np.ndarray, gcats: dict, pred: np.ndarray, pcats: dict, **gt_kw):
    return [([gt], [listing(gt, gcats, **gt_kw)], [pred], [listing(pred, pcats)])]


# -------------------------------------------------------------------------------------------------------------
# hand-computed quirks


def test_match_needs_iou_strictly_above_half():
    gt = np.array([[1, 1, 1, 1], [2, 2, 2, 2]])  # thing 1 (A), stuff 2 (B)
    pred = np.array([[5, 5, 0, 0], [6, 6, 6, 6]])
    # IoU(5, 1) = 2 / (2 + 4 - 2) = 0.5, not > 0.5: A has FP 1 + FN 1 -> PQ_A 0; PQ_B 1 -> VPQ_1 = 50
    r = score(one_frame(gt, {1: A, 2: B}, pred, {5: A, 6: B}), windows=(1,))
    assert r["VPQ_n"]["1"]["VPQ"] == pytest.approx(50.0, abs=1e-12)
    pred[0, 2] = 5  # IoU = 3 / (3 + 4 - 3) = 0.75 -> PQ_A = 0.75 / 1 -> VPQ_1 = (75 + 100) / 2
    r = score(one_frame(gt, {1: A, 2: B}, pred, {5: A, 6: B}), windows=(1,))
    assert r["VPQ_n"]["1"]["VPQ"] == pytest.approx(87.5, abs=1e-12)
    assert r["VPQ_n"]["1"]["VPQ_thing"] == pytest.approx(75.0, abs=1e-12)
    assert r["VPQ_n"]["1"]["VPQ_stuff"] == pytest.approx(100.0, abs=1e-12)


def test_pred_pixels_on_void_leave_the_union():
    gt = np.array([[1, 1, 1, 1], [0, 0, 0, 0]])  # thing 1 (A) over VOID
    pred = np.full((2, 4), 5)  # one A segment over everything
    # IoU = 4 / (8 + 4 - 4 - 4 on VOID) = 1 (without the VOID term: 4 / 8 = 0.5, no match)
    r = score(one_frame(gt, {1: A}, pred, {5: A}), windows=(1,))
    assert r["VPQ"] == pytest.approx(100.0) and r["VPQ_n"]["1"]["classes"] == 1  # only A counted


def test_unmatched_pred_mostly_on_void_is_no_false_positive():
    gt = np.array([[0, 0, 0, 0], [2, 2, 2, 2], [2, 2, 2, 2], [2, 2, 2, 2]])  # VOID row, stuff 2 (B) 12 px
    pred = np.array([[7, 7, 0, 0], [7, 7, 6, 6], [6, 6, 6, 6], [6, 6, 6, 6]])
    # pred 7 (A): 2 of its 4 px on VOID = 0.5, not > 0.5 -> FP; pred 6: IoU 10 / (10 + 12 - 10) = 5/6
    # VPQ_1 = (PQ_A 0 + PQ_B 5/6) / 2 = 41.67
    r = score(one_frame(gt, {2: B}, pred, {7: A, 6: B}), windows=(1,))
    assert r["VPQ"] == pytest.approx(100 * (5 / 6) / 2, abs=1e-12)
    pred = np.array([[7, 7, 7, 0], [7, 6, 6, 6], [6, 6, 6, 6], [6, 6, 6, 6]])
    # pred 7: 3 of 4 px on VOID = 0.75 > 0.5 -> ignored, A has TP + FP + FN = 0 and is skipped; PQ_B = 11/12
    r = score(one_frame(gt, {2: B}, pred, {7: A, 6: B}), windows=(1,))
    assert r["VPQ"] == pytest.approx(100 * 11 / 12, abs=1e-12) and r["VPQ_n"]["1"]["classes"] == 1


def test_crowd_region_is_the_last_crowd_id_of_the_class_in_first_appearance_order():
    # row 0 stuff 200 (B); row 1: crowd 41 (A) on the left half, crowd 42 (A) on the right half, both frames
    gt = np.array([[200] * 4, [41, 41, 42, 42]])
    cats = {200: B, 41: A, 42: A}
    g0 = listing(gt, cats, crowd=(41, 42), order=[200, 42, 41])  # frame 0 lists 42 before 41
    g1 = listing(gt, cats, crowd=(41, 42), order=[200, 41, 42])  # frame 1 lists 41 before 42

    def run(pred_cols):
        pred = np.array([[20] * 4, [0, 0, 0, 0]])
        pred[1, pred_cols] = 7  # an A segment over one crowd region
        pl = listing(pred, {20: B, 7: A})
        return score([([gt, gt], [g0, g1], [pred, pred], [pl, pl])], windows=(1, 2))

    # pred on crowd 41. n=1: frame 0's table is {200, 42, 41} -> crowd(A) = 41 -> 4/4 on crowd, ignored; frame 1's
    # is {200, 41, 42} -> crowd(A) = 42 -> 0/4, FP. A: FP 1 -> PQ_A 0 -> VPQ_1 = (0 + 100) / 2 = 50.
    # n=2: the window's table keeps first-appearance order {200, 42, 41} -> crowd(A) = 41 -> ignored; crowd GT are
    # never FN, so A is skipped: VPQ_2 = PQ_B = 100
    r = run([0, 1])
    assert r["VPQ_n"]["1"]["VPQ"] == pytest.approx(50.0) and r["VPQ_n"]["2"]["VPQ"] == pytest.approx(100.0)
    # pred on crowd 42: n=1 mirrors (FP in frame 0) -> 50; n=2: crowd(A) = 41, pred shares 0 px with it -> FP -> 50
    r = run([2, 3])
    assert r["VPQ_n"]["1"]["VPQ"] == pytest.approx(50.0) and r["VPQ_n"]["2"]["VPQ"] == pytest.approx(50.0)


def test_crowd_gt_is_never_matched_even_when_predicted_exactly():
    gt = np.array([[1, 1, 1, 1], [2, 2, 2, 2]])
    pred = np.array([[5, 5, 5, 5], [6, 6, 6, 6]])
    # crowd 1 (A) predicted exactly: no TP, no FN; pred 5 lies 4/4 on the crowd region -> ignored; A skipped
    r = score(one_frame(gt, {1: A, 2: B}, pred, {5: A, 6: B}, crowd=(1,)), windows=(1,))
    assert r["VPQ"] == pytest.approx(100.0) and r["VPQ_n"]["1"]["classes_thing"] == 0


def test_gt_tube_area_comes_from_the_json_with_duplicates_summed():
    gt = np.array([[1, 1, 1, 1], [2, 2, 2, 2]])
    pred = np.array([[5, 5, 5, 5], [6, 6, 6, 6]])
    cats, pcats = {1: A, 2: B}, {5: A, 6: B}
    # id 1 listed twice with areas 2 + 2 = 4 = its pixels: IoU 1
    r = score(one_frame(gt, cats, pred, pcats, areas={1: [2.0, 2.0]}), windows=(1,))
    assert r["VPQ"] == pytest.approx(100.0)
    # json says 8 for a 4-pixel segment: IoU = 4 / (4 + 8 - 4) = 0.5 -> no match -> PQ_A 0 -> VPQ 50
    r = score(one_frame(gt, cats, pred, pcats, areas={1: [8.0]}), windows=(1,))
    assert r["VPQ"] == pytest.approx(50.0)
    # json says 2: IoU = 4 / (4 + 2 - 4) = 2 > 1, where the official script fails its assert
    with pytest.raises(DataFormatError, match=r"segment 1 is smaller than its PNG pixel count"):
        score(one_frame(gt, cats, pred, pcats, areas={1: [2.0]}), windows=(1,))


def _id_switch_video():
    """8 frames: stuff row 200 (B) predicted as 20; thing row 100 (A) predicted as 5 in frames 0-3, 6 in 4-7."""
    gts, gls, preds, pls = [], [], [], []
    for t in range(8):
        gt = np.array([[200] * 4, [100] * 4])
        pred = np.array([[20] * 4, [5 if t < 4 else 6] * 4])
        gts.append(gt)
        gls.append(listing(gt, {200: B, 100: A}))
        preds.append(pred)
        pls.append(listing(pred, {20: B, 5: A, 6: A}))
    return [(gts, gls, preds, pls)]


def test_vpq_is_the_mean_over_window_lengths_and_unused_classes_are_skipped():
    r = score(_id_switch_video())
    # PQ_A per window length (GT tube 4 px per frame; a window mixing k frames of pred 5 and n-k of pred 6):
    # n=1: 8 windows, all TP (IoU 1)                                          -> 1
    # n=2: starts 0-2 and 4-6 TP (IoU 1); start 3: 4/(4+8-4) = 0.5 twice -> FN 1, FP 2 -> 6 / (6 + 1 + 0.5) = 0.8
    # n=4: s0 TP 1; s1 TP 12/16 = 0.75 + FP; s2 8/16 twice -> FN + 2 FP; s3 TP 0.75 + FP; s4 TP 1
    #      -> 3.5 / (4 + 4/2 + 1/2) = 7/13
    # n=6: s0 TP 16/24 + FP; s1 12/24 twice -> FN + 2 FP; s2 TP 16/24 + FP -> (4/3) / (2 + 2 + 0.5) = 8/27
    # n=8: 16/32 twice -> FN + 2 FP -> 0
    pq_a = {1: 1.0, 2: 0.8, 4: 7 / 13, 6: 8 / 27, 8: 0.0}
    for n, value in pq_a.items():
        entry = r["VPQ_n"][str(n)]
        assert entry["VPQ_thing"] == pytest.approx(100 * value, abs=1e-9)
        assert entry["VPQ_stuff"] == pytest.approx(100.0, abs=1e-9)
        assert entry["VPQ"] == pytest.approx(100 * (value + 1) / 2, abs=1e-9)  # C never appears: not in the mean
        assert entry["classes"] == 2
    assert r["VPQ_thing"] == pytest.approx(100 * sum(pq_a.values()) / 5, abs=1e-9)
    assert r["VPQ"] == pytest.approx(sum(100 * (v + 1) / 2 for v in pq_a.values()) / 5, abs=1e-9)
    assert r["VPQ_stuff"] == pytest.approx(100.0, abs=1e-9)


def test_short_videos_give_no_windows_and_an_undefined_mean():
    gts, gls, preds, pls = _id_switch_video()[0]
    r = score([(gts[:3], gls[:3], preds[:3], pls[:3])])  # 3 frames: no window of 4, 6 or 8 frames
    assert r["VPQ_n"]["1"]["VPQ"] == pytest.approx(100.0) and r["VPQ_n"]["2"]["VPQ"] == pytest.approx(100.0)
    assert r["VPQ_n"]["4"]["VPQ"] is None and r["VPQ_n"]["4"]["classes"] == 0
    assert r["VPQ"] is None  # the official script divides by zero here


def test_chunked_windows_equal_one_pass(monkeypatch):
    rng = np.random.default_rng(5)
    case, cats = random_case(rng, videos=3)
    whole = score(case, cats)
    monkeypatch.setattr(vps_module, "_CHUNK_CELLS", 1)  # one window at a time
    _assert_same(score(case, cats), whole)


# -------------------------------------------------------------------------------------------------------------
# naive reference (written from reference §3, one loop per window and per pixel)


def naive_vpq(videos, categories, windows=WINDOWS) -> dict:
    """VPQ from the text of reference §3: per window a table of GT / pred segments in first-appearance order."""
    per_n = {}
    for n in windows:
        stat = {c.id: [0.0, 0, 0, 0] for c in categories}  # iou sum, tp, fp, fn
        for gt_frames, gt_lists, pred_frames, pred_lists in videos:
            for i in range(0, len(gt_frames) - n + 1):
                gt_info: dict[int, dict] = {}
                pred_info: dict[int, dict] = {}
                inter: dict[tuple[int, int], int] = {}
                for t in range(i, i + n):
                    for s in gt_lists[t]:
                        entry = gt_info.setdefault(s.id, {"cat": s.category_id, "crowd": s.iscrowd, "area": 0.0})
                        entry["area"] += s.area
                    for s in pred_lists[t]:
                        pred_info.setdefault(s.id, {"cat": s.category_id, "area": 0})
                    g_frame, p_frame = gt_frames[t], pred_frames[t]
                    for y in range(g_frame.shape[0]):
                        for x in range(g_frame.shape[1]):
                            key = (int(g_frame[y, x]), int(p_frame[y, x]))
                            inter[key] = inter.get(key, 0) + 1
                            if key[1] in pred_info:
                                pred_info[key[1]]["area"] += 1
                gt_matched, pred_matched = set(), set()
                for (g, p), x in inter.items():
                    if g not in gt_info or p not in pred_info:
                        continue
                    if gt_info[g]["crowd"] or gt_info[g]["cat"] != pred_info[p]["cat"]:
                        continue
                    iou = x / (pred_info[p]["area"] + gt_info[g]["area"] - x - inter.get((0, p), 0))
                    if iou > 0.5:
                        stat[gt_info[g]["cat"]][0] += iou
                        stat[gt_info[g]["cat"]][1] += 1
                        gt_matched.add(g)
                        pred_matched.add(p)
                crowd_of: dict[int, int] = {}
                for g, info in gt_info.items():
                    if g in gt_matched:
                        continue
                    if info["crowd"]:
                        crowd_of[info["cat"]] = g
                        continue
                    stat[info["cat"]][3] += 1
                for p, info in pred_info.items():
                    if p in pred_matched:
                        continue
                    ignored = inter.get((0, p), 0)
                    if info["cat"] in crowd_of:
                        ignored += inter.get((crowd_of[info["cat"]], p), 0)
                    if ignored / info["area"] > 0.5:
                        continue
                    stat[info["cat"]][2] += 1
        entry = {}
        for key, want in (("VPQ", None), ("VPQ_thing", True), ("VPQ_stuff", False)):
            values = []
            for c in categories:
                iou, tp, fp, fn = stat[c.id]
                if (want is not None and c.isthing != want) or tp + fp + fn == 0:
                    continue
                values.append(iou / (tp + 0.5 * fp + 0.5 * fn))
            entry[key] = 100 * sum(values) / len(values) if values else None
        per_n[str(n)] = entry
    out = {"VPQ_n": per_n}
    for key in ("VPQ", "VPQ_thing", "VPQ_stuff"):
        values = [per_n[str(n)][key] for n in windows]
        out[key] = None if None in values else sum(values) / len(values)
    return out


def random_case(rng: np.random.Generator, *, videos: int = 3, max_frames: int = 11, size: tuple[int, int] = (6, 8),
                things: int = 3, stuff: int = 2, crowd_p: float = 0.25):
    """Random GT videos (moving boxes on drifting stuff, VOID specks, crowd things, listed-but-absent ids) and
    predictions derived from them (relabels, id switches, merges, wrong classes, noise boxes, VOID)."""
    cats = [Category(i, f"t{i}", True) for i in range(things)] + \
           [Category(things + j, f"s{j}", False) for j in range(stuff)]
    H, W = size
    out = []
    for _ in range(videos):
        T = int(rng.integers(1, max_frames + 1))
        gcat: dict[int, int] = {(things + j + 1) * 100: things + j for j in range(stuff)}
        crowd: set[int] = set()
        objects = []
        for k in range(int(rng.integers(1, 5))):
            c = int(rng.integers(0, things))
            gid = (c + 1) * 100 + k + 1
            gcat[gid] = c
            if rng.random() < crowd_p:
                crowd.add(gid)
            h, w = int(rng.integers(1, H)), int(rng.integers(1, W))
            objects.append((gid, h, w, rng.integers(-1, H, size=2), rng.integers(-2, 3, size=2)))
        split = int(rng.integers(1, W))
        gts = []
        for t in range(T):
            frame = np.where(np.arange(W)[None, :] < (split + t // 3) % W, (things + 1) * 100,
                             (things + stuff) * 100).repeat(H, 0)
            for gid, h, w, (y0, x0), (dy, dx) in objects:
                y, x = (y0 + dy * t) % H, (x0 + dx * t) % W
                frame[y:y + h, x:x + w] = gid
            frame[rng.random((H, W)) < 0.08] = 0
            gts.append(frame)
        gl = []
        for frame in gts:
            ids = sorted(set(np.unique(frame).tolist()) - {0})
            if rng.random() < 0.15:
                ids.append(int(rng.choice(list(gcat))))  # listed, maybe absent from the PNG (area 0)
            ids = list(dict.fromkeys(ids))
            rng.shuffle(ids)
            gl.append([Segment(i, gcat[i], int(i in crowd), float((frame == i).sum())) for i in ids])
        # prediction
        mapping = {g: g + 5000 for g in gcat}
        pcat: dict[int, int] = {}
        if rng.random() < 0.3 and len(objects) > 1:
            mapping[objects[1][0]] = mapping[objects[0][0]]  # two GT ids merged into one prediction
        switch = int(rng.integers(0, T + 1))
        preds = []
        for t, frame in enumerate(gts):
            pred = np.vectorize(lambda g: mapping.get(g, 0))(frame) if frame.size else frame.copy()
            if t >= switch and objects:
                gid = objects[0][0]
                pred[frame == gid] = gid + 9000  # id switch of the first object
            if rng.random() < 0.5:
                y, x = int(rng.integers(0, H)), int(rng.integers(0, W))
                pred[y:y + int(rng.integers(1, 4)), x:x + int(rng.integers(1, 5))] = \
                    int(rng.choice([0, 7777, mapping[(things + 1) * 100]]))
            if rng.random() < 0.3:
                pred = np.roll(pred, int(rng.integers(-1, 2)), axis=1)
            preds.append(pred.astype(np.int64))
        pl = []
        for pred in preds:
            ids = sorted(set(np.unique(pred).tolist()) - {0})
            for i in ids:
                if i not in pcat:
                    g = i - 9000 if i - 9000 in gcat else i - 5000
                    pcat[i] = gcat[g] if g in gcat and rng.random() < 0.85 else int(rng.integers(0, things + stuff))
            rng.shuffle(ids)
            pl.append([Segment(i, pcat[i]) for i in ids])
        out.append((gts, gl, preds, pl))
    return out, cats


def _assert_same(fast: dict, slow: dict) -> None:
    for key in ("VPQ", "VPQ_thing", "VPQ_stuff"):
        if slow[key] is None:
            assert fast[key] is None, key
        else:
            assert abs(fast[key] - slow[key]) <= 1e-9, (key, fast[key], slow[key])
    for n, entry in slow["VPQ_n"].items():
        for key, value in entry.items():
            got = fast["VPQ_n"][n][key]
            assert (got is None) if value is None else abs(got - value) <= 1e-9, (n, key, got, value)


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_equals_naive_reference(seed):
    rng = np.random.default_rng(seed)
    case, cats = random_case(rng, videos=int(rng.integers(1, 5)), crowd_p=0.5 if seed % 4 == 0 else 0.2)
    _assert_same(score(case, cats), naive_vpq(case, cats))


def test_naive_reference_agrees_on_the_hand_cases():
    _assert_same(score(_id_switch_video()), naive_vpq(_id_switch_video(), CATS))


# -------------------------------------------------------------------------------------------------------------
# files and CLI


@pytest.fixture(scope="module")
def vps_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vps")
    generate_panoptic_dataset(out, task="vps", videos=3, frames=9, size="40x48", categories=3, valid_fraction=0.4,
                              seed=4)
    return out / "VIPSeg" / "VIPSeg_720P"


def _submission(vps_set: Path, tmp_path: Path) -> Path:
    return write_perfect_vps_submission(vps_set / "panoptic_gt_VIPSeg_val.json", None, tmp_path / "sub")


def _eval(capsys, gt: Path, sub: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["eval", "--task", "vps", "--gt", str(gt), "--pred", str(sub), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_perfect_submission_scores_100(vps_set, tmp_path, capsys):
    sub = _submission(vps_set, tmp_path)
    code, out, err = _eval(capsys, vps_set / "panoptic_gt_VIPSeg_val.json", sub, "--gt-masks",
                           str(vps_set / "panomasksRGB"), "--per-category")
    assert code == 0 and err == "" and "VPQ" in out and "STQ" in out
    metrics = json.loads((sub / "metrics.json").read_text())
    assert metrics["VPQ"] == metrics["VPQ_thing"] == metrics["VPQ_stuff"] == 100.0
    assert sorted(metrics["VPQ_n"], key=int) == ["1", "2", "4", "6", "8"]
    assert metrics["STQ"] == pytest.approx(100.0) and metrics["AQ"] == pytest.approx(100.0)
    assert metrics["SQ"] == pytest.approx(100.0) and metrics["info"]["scale"] == "x100"
    assert metrics["scale"] == 100 and "fractions" in metrics["scale_note"]  # the official STQ prints 0..1


def _first_frame(sub: Path) -> tuple[dict, Path]:
    data = json.loads((sub / "pred.json").read_text())
    video = data["annotations"][0]["video_id"]
    frame = data["annotations"][0]["annotations"][0]
    return data, sub / "pan_pred" / video / frame["file_name"]


def _drop_segment(sub: Path) -> str:
    data, _ = _first_frame(sub)
    dropped = data["annotations"][0]["annotations"][0]["segments_info"].pop()
    (sub / "pred.json").write_text(json.dumps(data))
    return rf"pan_pred/.*\.png: video \S+: frame \d+: field 'segments_info': segment id {dropped['id']} is in the " \
           r"PNG but not in pred\.json"


def _extra_segment(sub: Path) -> str:
    data, _ = _first_frame(sub)
    data["annotations"][0]["annotations"][0]["segments_info"].append({"id": 4242, "category_id": 0})
    (sub / "pred.json").write_text(json.dumps(data))
    return r"pred\.json: video \S+: frame \d+: field 'segments_info': segment id 4242 is listed but absent from"


def _unknown_category(sub: Path) -> str:
    data, _ = _first_frame(sub)
    data["annotations"][0]["annotations"][0]["segments_info"][0]["category_id"] = 99
    (sub / "pred.json").write_text(json.dumps(data))
    return r"pred\.json: video \S+: frame \d+: segment \d+: field 'category_id': unknown category id 99"


def _missing_frame(sub: Path) -> str:
    _, png = _first_frame(sub)
    png.unlink()
    return r"pan_pred/.*\.png: video \S+: frame \d+: field 'pan_pred': missing frame"


def _wrong_size(sub: Path) -> str:
    _, png = _first_frame(sub)
    Image.fromarray(np.zeros((20, 48, 3), dtype=np.uint8)).save(png)
    return r"pan_pred/.*\.png: video \S+: frame \d+: field 'size': is 20x48 but the ground-truth mask is 40x48"


def _not_rgb(sub: Path) -> str:
    _, png = _first_frame(sub)
    Image.fromarray(np.zeros((40, 48), dtype=np.uint8)).save(png)
    return r"field 'pan_pred': must be an RGB PNG of ids"


def _corrupt_png(sub: Path) -> str:
    _, png = _first_frame(sub)
    png.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return r"field 'pan_pred': not a readable PNG"


def _frame_count(sub: Path) -> str:
    data, _ = _first_frame(sub)
    data["annotations"][0]["annotations"].pop()
    (sub / "pred.json").write_text(json.dumps(data))
    return r"pred\.json: video \S+: field 'annotations': has 8 frames but the ground truth has 9"


def _missing_video(sub: Path) -> str:
    data, _ = _first_frame(sub)
    data["annotations"].pop(0)
    (sub / "pred.json").write_text(json.dumps(data))
    return r"pred\.json: video \S+: field 'video_id': no prediction for this ground-truth video"


def _void_id(sub: Path) -> str:
    data, _ = _first_frame(sub)
    data["annotations"][0]["annotations"][0]["segments_info"][0]["id"] = 0
    (sub / "pred.json").write_text(json.dumps(data))
    return r"pred\.json: video \S+: frame \d+: segment 0: field 'id': id 0 is VOID"


def _no_json(sub: Path) -> str:
    (sub / "pred.json").unlink()
    return r"pred\.json: submission json not found"


ERRORS = [_drop_segment, _extra_segment, _unknown_category, _missing_frame, _wrong_size, _not_rgb, _corrupt_png,
          _frame_count, _missing_video, _void_id, _no_json]


@pytest.mark.parametrize("mutate", ERRORS, ids=[f.__name__.strip("_") for f in ERRORS])
def test_cli_bad_submission_is_one_line_exit_2(vps_set, tmp_path, capsys, mutate):
    sub = _submission(vps_set, tmp_path)
    message = mutate(sub)
    code, out, err = _eval(capsys, vps_set / "panoptic_gt_VIPSeg_val.json", sub, "--out", str(tmp_path / "m.json"))
    line = err.strip()
    assert code == 2 and "\n" not in line and "Traceback" not in line, err
    assert line.startswith("spvis eval: error: ") and __import__("re").search(message, line), line
    assert not (tmp_path / "m.json").exists()


def test_cli_bad_ground_truth_and_flags(vps_set, tmp_path, capsys):
    sub = _submission(vps_set, tmp_path)
    code, _, err = _eval(capsys, tmp_path / "nope.json", sub)
    assert code == 2 and "nope.json: file not found" in err
    code, _, err = _eval(capsys, vps_set / "panoptic_gt_VIPSeg_val.json", sub, "--gt-masks", str(tmp_path))
    assert code == 2 and "field 'mask': file not found" in err and err.count("\n") == 1
    code, _, err = _eval(capsys, vps_set / "panoptic_gt_VIPSeg_val.json", sub, "--zip", str(tmp_path / "s.zip"))
    assert code == 2 and "--zip applies to --task vis only" in err
    shutil.rmtree(sub)
    code, _, err = _eval(capsys, vps_set / "panoptic_gt_VIPSeg_val.json", sub)
    assert code == 2 and "submission folder not found" in err
