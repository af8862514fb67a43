"""`spvis report`: error analysis on hand-made cases, exact metric values in the HTML, a headless-Chromium render."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from spvis.cli.main import main
from spvis.data.synth import generate_synthetic_dataset
from spvis.evaluation import evaluate
from spvis.evaluation.ground_truth import load_ground_truth
from spvis.evaluation.results_io import load_results
from spvis.evaluation.synthetic import box_rle
from spvis.evaluation.vis_ap import evaluate_ap
from spvis.report import analyse, write_report
from spvis.report.coverage import COVER_ABSENT, COVER_MISSED
from spvis.report.gallery import pick_frames
from spvis.report.html import _fmt
from spvis.report.pr_curves import category_curves, mean_curve

SIZE, FRAMES = 64, 10
BOX_A, BOX_B, BOX_C = (2, 2, 20, 20), (40, 2, 58, 20), (2, 40, 20, 58)  # x0, y0, x1, y1: 18 x 18 each
EMPTY_CORNER = (40, 40, 60, 60)


def _track(box: tuple | None, frames: range | None = None) -> list[dict | None]:
    """Per-frame RLEs of a static box (None outside ``frames``)."""
    frames = range(FRAMES) if frames is None else frames
    return [box_rle(SIZE, SIZE, box) if t in frames and box is not None else None for t in range(FRAMES)]


def _gt(tracks: list[tuple[int, int, list]]) -> dict:
    """One-video GT with categories 1 "cat" and 2 "dog"; tracks = (id, category, per-frame segmentations)."""
    return {"videos": [{"id": 1, "file_names": [f"v1/{t:05d}.jpg" for t in range(FRAMES)], "height": SIZE,
                        "width": SIZE, "length": FRAMES}],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": [{"id": tid, "video_id": 1, "category_id": cid, "iscrowd": 0, "segmentations": segs}
                            for tid, cid, segs in tracks]}


def _pred(category: int, score: float, segs: list) -> dict:
    return {"video_id": 1, "category_id": category, "score": score, "segmentations": segs}


def _analysis(gt_dict: dict, results: list[dict], thr: float = 0.5):
    gt = load_ground_truth(gt_dict)
    return analyse(gt, load_results(results, gt), track_score_thr=thr).videos[0]


def test_identity_swap_missed_and_false_tracks():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 1, _track(BOX_B)), (3, 2, _track(BOX_C))])
    first, second = range(0, 5), range(5, FRAMES)
    swap_ab = [a or b for a, b in zip(_track(BOX_A, first), _track(BOX_B, second))]  # A on 0-4, B on 5-9
    swap_ba = [b or a for a, b in zip(_track(BOX_A, second), _track(BOX_B, first))]  # B on 0-4, A on 5-9
    results = [_pred(1, 0.9, swap_ab), _pred(1, 0.8, swap_ba), _pred(1, 0.7, _track(EMPTY_CORNER)),
               _pred(1, 0.6, _track(BOX_C))]  # 2: overlaps nothing; 3: GT C's mask with the wrong class
    va = _analysis(gt, results)
    a, b, c = va.timelines
    assert a.covering.tolist() == [0] * 5 + [1] * 5 and a.switch_frames == [5]
    assert b.covering.tolist() == [1] * 5 + [0] * 5 and b.switch_frames == [5]
    assert a.cover_iou.tolist() == [1.0] * FRAMES
    assert c.covering.tolist() == [COVER_MISSED] * FRAMES and c.missed and c.switch_frames == []
    assert va.tracking["IDSW"] == 2  # the tracking code's CLEAR agrees with the two timeline switches
    assert va.best_iou == {1: 1 / 3, 2: 1 / 3, 3: 0.0}  # half the frames right: I = 5 boxes, U = 15 boxes
    [missed] = va.missed
    assert (missed.gt_id, missed.frames, missed.best_iou, missed.best_low_score_iou, missed.best_other_iou,
            missed.best_other_category, missed.reason) == (3, FRAMES, 0.0, 0.0, 1.0, 1, "wrong class")
    assert [(f.result_index, f.reason, f.best_gt_id, f.best_iou, f.frames) for f in va.false] == [
        (2, "background", None, 0.0, FRAMES), (3, "wrong class", 3, 1.0, FRAMES)]
    metrics = evaluate(gt, results)
    assert metrics["tracking"]["pooled"]["IDSW"] == 2
    assert {k: va.tracking[k] for k in ("IDF1", "HOTA", "MOTA")} == {
        k: metrics["tracking"]["pooled"][k] for k in ("IDF1", "HOTA", "MOTA")}  # one video: pooled = per video
    # the switch (5), the first missed frame and the false tracks' first frame (0), then evenly spaced 0/3/6/9
    assert pick_frames(va) == [(0, "missed GT"), (3, ""), (5, "ID switch"), (6, "")]


def test_duplicates_low_scores_and_partial_coverage():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 1, _track(BOX_B)), (3, 2, _track(BOX_C, range(2, 8)))])
    results = [_pred(1, 0.9, _track(BOX_A)), _pred(1, 0.8, _track(BOX_A)),  # 1: a duplicate of 0
               _pred(1, 0.3, _track(BOX_B)),  # GT B only found below the score threshold
               _pred(2, 0.9, _track(BOX_C, range(2, 5)))]  # GT C covered on frames 2-4 of its 2-7
    va = _analysis(gt, results)
    a, b, c = va.timelines
    assert a.covering.tolist() == [0] * FRAMES and a.switch_frames == []  # ties and continuity keep result 0
    assert b.missed and b.covering.tolist() == [COVER_MISSED] * FRAMES
    assert c.covering.tolist() == [COVER_ABSENT] * 2 + [3] * 3 + [COVER_MISSED] * 3 + [COVER_ABSENT] * 2
    assert not c.missed and (c.present_frames, c.covered_frames) == (6, 3)
    assert [(m.gt_id, m.best_iou, m.best_low_score_iou, m.reason) for m in va.missed] == [
        (2, 1.0, 1.0, "below score threshold")]
    assert [(f.result_index, f.reason, f.best_gt_id) for f in va.false] == [(1, "duplicate", 1)]
    assert va.best_iou == {1: 1.0, 2: 1.0, 3: 0.5}  # C: 3 of its 6 frames
    assert (va.mean_best_iou, va.recall50, va.has_errors) == (2.5 / 3, 1.0, True)
    assert va.tracking["IDSW"] == 0
    # without the threshold the low-score result counts: B is found and nothing is missed
    assert _analysis(gt, results, thr=0.0).missed == []


def test_display_format():
    shown = (_fmt("AP", -1.0), _fmt("AP50", 0.6134), _fmt("MOTA", -1.0), _fmt("IDSW", 3))
    assert shown == ("–", "61.3", "-100.0", "3")  # -1 is "undefined" only for AP/AR


def test_empty_results_everything_missed():
    gt = _gt([(1, 1, _track(BOX_A))])
    va = _analysis(gt, [])
    assert [(m.gt_id, m.reason) for m in va.missed] == [(1, "no prediction")]
    assert va.false == [] and va.kept == [] and va.tracking["IDF1"] == 0.0


# ---------------------------------------------------------------------------------------------------------------
# synthetic videos with deliberate errors


def _perturbed_results(gt: dict) -> tuple[list[dict], dict]:
    """Results made from the GT tracks with known errors; returns them and the GT / result ids of each error.

    Video 1: the first two tracks of one category swap identity at the middle frame. Video 2: its first
    track is dropped, its second one predicted with a category absent from the video. Video 3: its first
    track predicted with score 0.3, its second one predicted twice (a duplicate at score 0.6).
    Every other track is copied exactly (score 0.8).
    """
    by_video: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        by_video.setdefault(a["video_id"], []).append(a)
    cat_ids = [c["id"] for c in gt["categories"]]
    results: list[dict] = []
    known = {"swapped": [], "missed": [], "false": []}

    def add(video: int, category: int, score: float, segs: list) -> int:
        results.append({"video_id": video, "category_id": category, "score": score, "segmentations": segs})
        return len(results) - 1

    v1, v2, v3 = sorted(by_video)[:3]
    for vid, anns in sorted(by_video.items()):
        done: set[int] = set()
        if vid == v1:
            same = {}
            for a in anns:
                same.setdefault(a["category_id"], []).append(a)
            a, b = next(v for v in same.values() if len(v) >= 2)[:2]
            h = len(a["segmentations"]) // 2
            add(vid, a["category_id"], 0.95, a["segmentations"][:h] + b["segmentations"][h:])
            add(vid, a["category_id"], 0.9, b["segmentations"][:h] + a["segmentations"][h:])
            known["swapped"] = [(a["id"], h), (b["id"], h)]
            done = {a["id"], b["id"]}
        if vid == v2:
            first, second = anns[0], anns[1]
            present = {a["category_id"] for a in anns}
            wrong = next(c for c in cat_ids if c not in present)
            known["false"].append((add(vid, wrong, 0.85, second["segmentations"]), "wrong class"))
            known["missed"] += [(first["id"], "no prediction"), (second["id"], "wrong class")]
            done = {first["id"], second["id"]}
        if vid == v3:
            first, second = anns[0], anns[1]
            add(vid, first["category_id"], 0.3, first["segmentations"])
            add(vid, second["category_id"], 0.8, second["segmentations"])
            known["false"].append((add(vid, second["category_id"], 0.6, second["segmentations"]), "duplicate"))
            known["missed"].append((first["id"], "below score threshold"))
            done = {first["id"], second["id"]}
        for a in anns:
            if a["id"] not in done:
                add(vid, a["category_id"], 0.8, a["segmentations"])
    return results, known


@pytest.fixture(scope="module")
def synthetic_case(tmp_path_factory) -> dict:
    """3 synthetic videos (64 px, 6 frames), perturbed results, and the report of both."""
    root = tmp_path_factory.mktemp("report_case")
    info = generate_synthetic_dataset(root / "synth", videos=3, frames=6, size=64, valid_fraction=0.0, seed=0)
    gt_path = Path(info["train_json"])
    results, known = _perturbed_results(json.loads(gt_path.read_text()))
    pred_path = root / "results.json"
    pred_path.write_text(json.dumps(results))
    old_umask = os.umask(0o022)
    try:
        report = write_report(gt_path, pred_path, root / "report", image_root=info["train_image_root"])
    finally:
        os.umask(old_umask)
    return {"gt": gt_path, "pred": pred_path, "known": known, "report": report,
            "image_root": Path(info["train_image_root"]), "root": root}


def test_synthetic_errors_are_found_and_sum_to_the_totals(synthetic_case):
    gt = load_ground_truth(synthetic_case["gt"])
    results = load_results(synthetic_case["pred"], gt)
    analysis = analyse(gt, results, track_score_thr=0.5)
    known = synthetic_case["known"]
    switches = {tl.gt_id: tl.switch_frames for va in analysis.videos for tl in va.timelines if tl.switch_frames}
    assert switches == {gt_id: [frame] for gt_id, frame in known["swapped"]}
    assert sorted((m.gt_id, m.reason) for va in analysis.videos for m in va.missed) == sorted(known["missed"])
    assert sorted((f.result_index, f.reason) for va in analysis.videos for f in va.false) == sorted(known["false"])
    pooled = evaluate(synthetic_case["gt"], synthetic_case["pred"])["tracking"]["pooled"]
    for key in ("IDSW", "CLR_TP", "CLR_FN", "CLR_FP", "IDTP", "IDFN", "IDFP"):
        assert sum(va.tracking[key] for va in analysis.videos) == pooled[key], key
    for va in analysis.videos:  # timeline switches are CLEAR's ID switches, video by video
        assert sum(len(tl.switch_frames) for tl in va.timelines) == va.tracking["IDSW"]
    order = analysis.worst_first()  # video 2 first: two of its three tracks are never found
    assert [va.video.id for va in order][0] == 2
    assert [va.mean_best_iou for va in order] == sorted(va.mean_best_iou for va in analysis.videos)
    ap = evaluate_ap(gt, results)
    metrics = evaluate(synthetic_case["gt"], synthetic_case["pred"])
    assert mean_curve(ap, 0.5).ap == pytest.approx(metrics["AP50"], abs=1e-12)
    assert mean_curve(ap, 0.75).ap == pytest.approx(metrics["AP75"], abs=1e-12)
    for cid, curve in category_curves(ap, 0.5).items():
        assert (curve is None) == (metrics["per_category"][str(cid)]["AP"] == -1)


class _Cells(HTMLParser):
    """Collects ``{(table id, row, data-key): data-value}`` of metric cells, and every element id."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self.ids: set[str] = set()
        self.table = self.row = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "table":
            self.table = a.get("id", "")
        elif tag == "tr":
            self.row = a.get("data-row", "")
        elif tag == "td" and "data-key" in a and self.row:
            self.cells[(self.table, self.row, a["data-key"])] = a["data-value"]


def test_html_has_the_exact_metrics_of_evaluate(synthetic_case):
    page = synthetic_case["report"].read_text()
    metrics = evaluate(synthetic_case["gt"], synthetic_case["pred"])
    parser = _Cells()
    parser.feed(page)
    ap_keys = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
               "AP_light", "AP_medium", "AP_heavy", "AR_light", "AR_medium", "AR_heavy")  # synth GT has occlusion
    for key in ap_keys:
        assert float(parser.cells[("ap-table", "all", key)]) == metrics[key], key
    shown = 0
    for table in ("tracking-hota", "tracking-clear", "tracking-identity"):
        for row, combo in (("class avg", "class_avg"), ("pooled", "pooled")):
            for (t, r, key), value in parser.cells.items():
                if (t, r) == (table, row):
                    assert float(value) == metrics["tracking"][combo][key], (table, row, key)
                    shown += 1
    assert shown == 2 * (9 + 17 + 6)
    hota = metrics["tracking"]["pooled"]["HOTA"]
    assert re.search(rf'data-key="HOTA" data-value="{re.escape(repr(hota))}"[^>]*>{100 * hota:.1f}</td>', page)
    embedded = json.loads(re.search(r'<script type="application/json" id="metrics-json">(.*?)</script>', page,
                                    re.S).group(1))
    for key in ap_keys:
        assert embedded[key] == metrics[key]
    assert embedded["per_category"] == metrics["per_category"]
    assert {c: embedded["tracking"][c] for c in ("class_avg", "pooled")} == \
        {c: metrics["tracking"][c] for c in ("class_avg", "pooled")}
    for section in ("report-info", "category-table", "pr-all", "pr-categories", "video-table", "timelines",
                    "missed-table", "false-table", "worst-videos"):
        assert section in parser.ids, section
    assert page.count("data:image/jpeg;base64,") == 3 * 4  # 3 worst videos x 4 frames
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    report = synthetic_case["report"]
    assert os.listdir(report.parent) == ["index.html"]
    assert report.stat().st_mode & 0o777 == 0o644


def test_cli_report_and_one_line_errors_like_eval(synthetic_case, tmp_path, capsys):
    gt, pred = str(synthetic_case["gt"]), str(synthetic_case["pred"])
    out = tmp_path / "rep"
    assert main(["report", "--gt", gt, "--pred", pred, "--out", str(out), "--track-score-thr", "0.2"]) == 0
    assert "report written to" in capsys.readouterr().out
    page = (out / "index.html").read_text()
    assert "--image-root" in page and "data:image/jpeg" not in page  # no thumbnails without an image root
    assert f'data-value="{evaluate(gt, pred, track_score_thr=0.2)["tracking"]["pooled"]["IDF1"]!r}"' in page
    # a second report into the same folder is refused unless asked for (as infer refuses a used --out)
    (out / "index.html").write_text("mine")
    assert main(["report", "--gt", gt, "--pred", pred, "--out", str(out)]) == 2
    assert "already holds an index.html" in capsys.readouterr().err and (out / "index.html").read_text() == "mine"
    assert main(["report", "--gt", gt, "--pred", pred, "--out", str(out), "--overwrite"]) == 0
    assert (out / "index.html").read_text() != "mine"
    capsys.readouterr()
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("[{")
    wrong_video = tmp_path / "wrong.json"
    entries = json.loads(synthetic_case["pred"].read_text())
    entries[2]["video_id"] = 999
    wrong_video.write_text(json.dumps(entries))
    for args in (["--gt", str(tmp_path / "missing.json"), "--pred", pred], ["--gt", gt, "--pred", str(bad_json)],
                 ["--gt", gt, "--pred", str(wrong_video)]):
        report_dir = tmp_path / "bad_report"
        assert main(["report", *args, "--out", str(report_dir)]) == 2
        report_err = capsys.readouterr().err.strip()
        assert main(["eval", *args, "--out", str(tmp_path / "m.json")]) == 2
        eval_err = capsys.readouterr().err.strip()
        assert len(report_err.splitlines()) == 1 and report_err.startswith("spvis report: error: ")
        assert report_err.replace("spvis report:", "spvis eval:") == eval_err
        assert not report_dir.exists()
    assert main(["report", "--gt", gt, "--pred", pred, "--out", str(tmp_path / "r2"), "--image-root",
                 str(tmp_path / "nowhere")]) == 2
    assert "image root not found" in capsys.readouterr().err


def test_unreadable_frames_become_grey_tiles(synthetic_case, tmp_path):
    empty_root = tmp_path / "images"
    empty_root.mkdir()
    page = write_report(synthetic_case["gt"], synthetic_case["pred"], tmp_path / "r", image_root=empty_root
                        ).read_text()
    assert page.count("data:image/jpeg;base64,") == 12 and "image not readable" in page


# ---------------------------------------------------------------------------------------------------------------
# the page in a real browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _dump_dom(browser: str, page: Path, profile: Path) -> tuple[str, str]:
    """(rendered DOM, stderr log) of a headless load of ``page``."""
    proc = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH (Debian: apt-get install -y chromium)")
def test_page_renders_in_headless_chromium_without_errors(synthetic_case, tmp_path):
    browser = _chromium()
    dom, log = _dump_dom(browser, synthetic_case["report"], tmp_path / "profile")
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-js-errors="0"' in root, root
    assert 'data-report-ready="1"' in root  # the page's own script ran to its end
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Refused" in line], console
    for table in ("ap-table", "tracking-hota", "tracking-clear", "tracking-identity", "category-table",
                  "video-table", "missed-table", "false-table"):
        assert re.search(rf'<table id="{table}"', dom), table
    assert dom.count('class="sortable sortable-ready"') == 4
    assert dom.count("<svg") >= 4 and dom.count("<img ") == 12
    # control: the same check sees an error when the page has one
    broken = tmp_path / "broken.html"
    page = synthetic_case["report"].read_text()
    broken.write_text(page.replace("</body>", "<script>noSuchFunction()</script></body>"))
    dom, _ = _dump_dom(browser, broken, tmp_path / "profile")
    assert 'data-js-errors="1"' in re.search(r"<html[^>]*>", dom).group(0)
