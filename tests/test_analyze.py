"""`spvis analyze`: each error type planted alone in a hand-made video costs exactly its AP and only in its row."""

from __future__ import annotations

import json

import pytest

import spvis
from spvis.cli.main import main
from spvis.evaluation import evaluate
from spvis.evaluation.ground_truth import load_ground_truth
from spvis.evaluation.results_io import load_results
from spvis.evaluation.synthetic import box_rle
from spvis.report import build_report_html
from spvis.report.tide import assign_errors

SIZE, FRAMES = 64, 10
BOX_A, BOX_B = (2, 2, 20, 20), (40, 2, 58, 20)  # x0, y0, x1, y1: 18 x 18, disjoint
SHIFTED_A = (11, 2, 29, 20)  # BOX_A moved 9 px right: IoU 1/3 per frame
EMPTY_CORNER = (40, 40, 60, 60)
PERFECT = 1 - 1e-15  # the official precision carries an eps: a perfect result scores 0.9999999999999998
ROWS = ("classification", "duplicate", "mask", "association", "both", "background", "missed")


def _track(box: tuple, frames: range = range(FRAMES)) -> list[dict | None]:
    """Per-frame RLEs of a static box, None outside ``frames``."""
    return [box_rle(SIZE, SIZE, box) if t in frames else None for t in range(FRAMES)]


def _join(*parts: list) -> list:
    """Frame-wise union of per-frame lists whose frames do not overlap."""
    return [next((p[t] for p in parts if p[t] is not None), None) for t in range(FRAMES)]


def _gt(tracks: list[tuple[int, int, list]]) -> dict:
    """One-video GT with categories 1 "cat" and 2 "dog"; tracks = (id, category, per-frame segmentations)."""
    return {"videos": [{"id": 1, "file_names": [f"v1/{t:05d}.jpg" for t in range(FRAMES)], "height": SIZE,
                        "width": SIZE, "length": FRAMES}],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": [{"id": tid, "video_id": 1, "category_id": cid, "iscrowd": 0, "segmentations": segs}
                            for tid, cid, segs in tracks]}


def _pred(category: int, score: float, segs: list) -> dict:
    return {"video_id": 1, "category_id": category, "score": score, "segmentations": segs}


def _nonzero_rows(analysis: dict) -> dict[str, float]:
    return {k: v["dAP"] for k, v in analysis["errors"].items() if v["dAP"] != 0}


def _counts(analysis: dict) -> dict[str, int]:
    return {k: v["count"] for k, v in analysis["errors"].items() if v["count"]}


def test_perfect_predictions_cost_nothing():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 2, _track(BOX_B, range(3, 8)))])
    out = spvis.analyze(gt, [_pred(1, 0.9, _track(BOX_A)), _pred(2, 0.8, _track(BOX_B, range(3, 8)))])
    assert out["AP"] > PERFECT and out["AP50"] > PERFECT
    assert _nonzero_rows(out) == {} and _counts(out) == {}
    assert out["oracle_association"]["dAP"] == 0 and out["oracle_association"]["changed"] == 0
    assert out["assignments"] == [] and out["missed_gt"] == []


def test_wrong_class_only_classification_recovers_it():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 2, _track(BOX_B))])
    out = spvis.analyze(gt, [_pred(1, 0.9, _track(BOX_A)), _pred(1, 0.8, _track(BOX_B))])  # B called a cat
    assert out["AP"] == pytest.approx(0.5)  # cat perfect (its FP ranks last), dog 0
    assert _counts(out) == {"classification": 1}
    assert _nonzero_rows(out) == {"classification": pytest.approx(0.5)}
    assert out["oracle_association"]["dAP"] == 0  # re-linking keeps the predicted class
    assert out["assignments"] == [{"result": 1, "video_id": 1, "type": "classification", "gt_id": 2}]


def test_duplicate_only_duplicates():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 1, _track(BOX_B))])
    results = [_pred(1, 0.9, _track(BOX_A)), _pred(1, 0.8, _track(BOX_A)), _pred(1, 0.7, _track(BOX_B))]
    out = spvis.analyze(gt, results)
    assert out["AP"] == pytest.approx((51 + 50 * 2 / 3) / 101)  # TP, FP, TP: precision 2/3 beyond recall 0.5
    assert _counts(out) == {"duplicate": 1}
    assert _nonzero_rows(out) == {"duplicate": pytest.approx(1 - out["AP"])}
    assert out["oracle_association"]["dAP"] == 0  # a duplicate frame by frame stays a second track


def test_split_track_only_association_and_oracle():
    gt = _gt([(1, 1, _track(BOX_A))])
    results = [_pred(1, 0.9, _track(BOX_A, range(0, 6))), _pred(1, 0.8, _track(BOX_A, range(6, FRAMES)))]
    out = spvis.analyze(gt, results)
    assert out["AP"] == pytest.approx(0.3)  # the 6-frame piece (IoU 0.6) is a TP at 0.50, 0.55 and 0.60 only
    assert _counts(out) == {"association": 1}  # the 4-frame piece: IoU 0.4, exact on its frames
    assert _nonzero_rows(out) == {"association": pytest.approx(0.7)}
    assert out["oracle_association"]["dAP"] == pytest.approx(0.7) and out["oracle_association"]["changed"] == 2
    assert out["oracle_association"]["AP"] > PERFECT


def test_identity_swap_is_association():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 1, _track(BOX_B))])
    first, second = range(0, 4), range(4, FRAMES)
    results = [_pred(1, 0.9, _join(_track(BOX_A, first), _track(BOX_B, second))),  # A then B: IoU 3/7 with B
               _pred(1, 0.8, _join(_track(BOX_B, first), _track(BOX_A, second)))]  # B then A
    out = spvis.analyze(gt, results)
    assert out["AP"] == 0 and _counts(out) == {"association": 2}
    assert set(_nonzero_rows(out)) == {"association"}
    assert out["AP"] + out["errors"]["association"]["dAP"] > PERFECT
    assert out["oracle_association"]["AP"] > PERFECT


def test_a_switching_track_that_joins_nobody_is_not_cut():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 1, _track(BOX_B))])
    switching = _join(_track(BOX_A, range(0, 5)), _track(BOX_B, range(5, FRAMES)))  # IoU 1/3 with each
    out = spvis.analyze(gt, [_pred(1, 0.9, _track(BOX_A)), _pred(1, 0.8, _track(BOX_B)), _pred(1, 0.7, switching)])
    assert _counts(out) == {"association": 1}
    # its pieces overlap the true positives in time: re-linking would only make two false positives of one
    assert out["oracle_association"]["changed"] == 0
    assert _nonzero_rows(out) == {}  # it ranks last, so it costs nothing


def test_shifted_mask_only_mask_quality():
    gt = _gt([(1, 1, _track(BOX_A))])
    out = spvis.analyze(gt, [_pred(1, 0.9, _track(SHIFTED_A))])
    assert out["AP"] == 0
    assert _counts(out) == {"mask": 1}
    assert _nonzero_rows(out) == {"mask": pytest.approx(1.0)}
    assert out["oracle_association"]["dAP"] == 0


def test_true_positive_masks_cost_at_strict_thresholds():
    gt = _gt([(1, 1, _track(BOX_A))])
    almost = (2, 2, 20, 14)  # 12 of the 18 rows: IoU 2/3, a TP at 0.50-0.65, a mask error from 0.70 on
    out = spvis.analyze(gt, [_pred(1, 0.9, _track(almost))])
    assert out["AP"] == pytest.approx(0.4) and _counts(out) == {}  # counts are at IoU 0.5
    assert _nonzero_rows(out) == {"mask": pytest.approx(0.6)} and out["errors"]["mask"]["dAP50"] == 0


def test_a_better_duplicate_is_the_match_at_strict_thresholds():
    gt = _gt([(1, 1, _track(BOX_A))])
    almost = (2, 2, 20, 14)  # IoU 2/3
    out = spvis.analyze(gt, [_pred(1, 0.9, _track(almost)), _pred(1, 0.8, _track(BOX_A))])
    assert _counts(out) == {"duplicate": 1}  # at IoU 0.5 the exact one is the duplicate...
    assert out["errors"]["duplicate"]["dAP50"] == 0  # ...and costs nothing there (it ranks after the TP)
    # from 0.70 on it is the true positive and the first one a mask error: removing duplicates never costs AP
    assert out["errors"]["duplicate"]["dAP"] == 0 and out["errors"]["mask"]["dAP"] == pytest.approx(0.3)


def test_missing_gt_only_missed():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 1, _track(BOX_B))])
    out = spvis.analyze(gt, [_pred(1, 0.9, _track(BOX_A))])
    assert out["AP"] == pytest.approx(51 / 101)  # recall 0.5 at precision 1
    assert _counts(out) == {"missed": 1} and out["missed_gt"] == [2]
    assert _nonzero_rows(out) == {"missed": pytest.approx(1 - 51 / 101)}


def test_background_false_positive_only_background():
    gt = _gt([(1, 1, _track(BOX_A))])
    out = spvis.analyze(gt, [_pred(1, 0.95, _track(EMPTY_CORNER)), _pred(1, 0.9, _track(BOX_A))])
    assert out["AP"] == pytest.approx(0.5)  # FP first: precision 1/2 at recall 1
    assert _counts(out) == {"background": 1}
    assert _nonzero_rows(out) == {"background": pytest.approx(0.5)}
    assert out["oracle_association"]["dAP"] == 0  # frames on no GT stay where they are


def test_wrong_class_and_poor_mask_is_both():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 2, _track(BOX_B))])
    out = spvis.analyze(gt, [_pred(2, 0.95, _track(SHIFTED_A)), _pred(1, 0.9, _track(BOX_A)),
                             _pred(2, 0.8, _track(BOX_B))])
    assert _counts(out) == {"both": 1}
    assert _nonzero_rows(out) == {"both": pytest.approx(0.25)}  # dog: FP first, precision 1/2; cat perfect


def test_only_the_highest_scoring_error_fixes_a_gt():
    gt = _gt([(1, 1, _track(BOX_A))])
    results = [_pred(1, 0.9, _track(SHIFTED_A)), _pred(1, 0.8, _track(SHIFTED_A))]
    gt_loaded = load_ground_truth(gt)
    assignment = assign_errors(gt_loaded, load_results(results, gt_loaded))
    assert [e.kind for e in assignment.of_kind("mask")] == ["mask", "mask"]
    assert assignment.fixer == {1: 0}  # TIDE: one GT, one fix; the other error is suppressed
    out = spvis.analyze(gt, results)
    assert out["errors"]["mask"]["dAP"] == pytest.approx(1.0)


def test_base_ap_is_the_evaluators():
    gt = _gt([(1, 1, _track(BOX_A)), (2, 1, _track(BOX_B)), (3, 2, _track(BOX_B, range(2, 6)))])
    results = [_pred(1, 0.9, _track(SHIFTED_A)), _pred(1, 0.7, _track(BOX_B, range(0, 7))),
               _pred(2, 0.6, _track(EMPTY_CORNER)), _pred(2, 0.5, _track(BOX_B, range(2, 6)))]
    out = spvis.analyze(gt, results)
    metrics = evaluate(gt, results)
    assert (out["AP"], out["AP50"]) == (metrics["AP"], metrics["AP50"])
    assert out["info"]["num_results"] == 4 and out["info"]["num_gt_tracks"] == 3


@pytest.mark.parametrize("case", ["blobs", "boxes"])
def test_evaluator_fixtures(test_data_dir, case):
    """Null and empty frames, score ties, a GT with id 0, a crowd GT, a category without GT (tests/data/eval)."""
    gt_path, pred_path = test_data_dir / "eval" / f"{case}_gt.json", test_data_dir / "eval" / f"{case}_results.json"
    out = spvis.analyze(gt_path, pred_path)
    metrics = evaluate(gt_path, pred_path)
    assert (out["AP"], out["AP50"]) == (metrics["AP"], metrics["AP50"])
    crowd = {a["id"] for a in json.loads(gt_path.read_text())["annotations"] if a.get("iscrowd")}
    assert not crowd & set(out["missed_gt"])
    assert all(v["dAP"] is not None and v["dAP"] > -0.01 for v in out["errors"].values())
    assert len(out["assignments"]) == sum(v["count"] for k, v in out["errors"].items() if k != "missed")


def test_no_predictions():
    gt = _gt([(1, 1, _track(BOX_A))])
    out = spvis.analyze(gt, [])
    assert out["AP"] == 0 and _counts(out) == {"missed": 1}
    assert out["errors"]["missed"]["dAP"] is None  # no GT left: AP undefined


# ---------------------------------------------------------------------------------------------------------------
# command line and report


def _write_case(tmp_path):
    gt = _gt([(1, 1, _track(BOX_A))])
    results = [_pred(1, 0.9, _track(BOX_A, range(0, 6))), _pred(1, 0.8, _track(BOX_A, range(6, FRAMES)))]
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(results))
    return gt_path, pred_path


def test_cli_prints_table_and_writes_json(tmp_path, capsys):
    gt_path, pred_path = _write_case(tmp_path)
    out = tmp_path / "sub" / "analysis.json"
    assert main(["analyze", "--gt", str(gt_path), "--pred", str(pred_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "base AP 30.0" in printed
    assert any(line.split()[:2] == ["association", "+70.0"] for line in printed.splitlines())
    assert "oracle association" in printed and f"written to {out}" in printed
    written = json.loads(out.read_text())
    assert written["errors"]["association"]["dAP"] == pytest.approx(0.7)
    # an existing file is kept unless --overwrite
    assert main(["analyze", "--gt", str(gt_path), "--pred", str(pred_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spvis analyze: error: ") and str(out) in err and "--overwrite" in err
    assert "\n" not in err
    out.write_text("{}")
    assert main(["analyze", "--gt", str(gt_path), "--pred", str(pred_path), "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["AP"] == pytest.approx(0.3)


def test_cli_json_to_stdout(tmp_path, capsys):
    gt_path, pred_path = _write_case(tmp_path)
    assert main(["analyze", "--gt", str(gt_path), "--pred", str(pred_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["oracle_association"]["dAP"] == pytest.approx(0.7)


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_cli_bad_input_is_one_line(tmp_path, capsys, which):
    gt_path, pred_path = _write_case(tmp_path)
    bad = gt_path if which == "gt" else pred_path
    bad.write_text("{not json")
    assert main(["analyze", "--gt", str(gt_path), "--pred", str(pred_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spvis analyze: error: ") and str(bad) in err and "\n" not in err


def test_cli_refuses_to_overwrite_an_input(tmp_path, capsys):
    gt_path, pred_path = _write_case(tmp_path)
    assert main(["analyze", "--gt", str(gt_path), "--pred", str(pred_path), "--out", str(pred_path),
                 "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spvis analyze: error: ") and "--pred" in err and "\n" not in err
    assert json.loads(pred_path.read_text())[0]["score"] == 0.9


def test_report_shows_the_table(tmp_path):
    gt_path, pred_path = _write_case(tmp_path)
    gt = load_ground_truth(gt_path)
    page = build_report_html(gt, load_results(pred_path, gt), gt_source=gt_path, pred_label=str(pred_path))
    assert 'id="ap-errors-table"' in page
    assert 'data-error="association"' in page and "+70.0" in page
