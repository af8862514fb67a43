"""`spvis eval`: table on stdout, metrics.json written atomically, one-line errors with exit status 2."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from spvis.cli.main import main

DATA = Path(__file__).parent / "data" / "eval"
AP_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def test_eval_prints_table_and_writes_metrics(tmp_path, capsys):
    pred = tmp_path / "results.json"
    shutil.copy(DATA / "boxes_results.json", pred)
    code = main(["eval", "--gt", str(DATA / "boxes_gt.json"), "--pred", str(pred), "--per-category",
                 "--zip", str(tmp_path / "submission.zip")])
    assert code == 0
    out = capsys.readouterr().out
    assert "HOTA" in out and "class avg" in out and "Per category" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert list(metrics)[:12] == AP_KEYS
    assert 0 < metrics["AP"] < 1
    expected = json.loads((DATA / "boxes_trackeval.json").read_text())["0.5"]
    for combo in ("class_avg", "pooled"):
        assert metrics["tracking"][combo]["HOTA"] == pytest.approx(expected[combo]["HOTA"], abs=1e-12)
        assert metrics["tracking"][combo]["IDSW"] == expected[combo]["IDSW"]
    assert set(metrics["tracking"]["per_category"]) == set(metrics["per_category"]) == {"1", "2", "3", "4"}
    assert metrics["per_category"]["4"]["AP"] == -1  # no GT in category 4
    with zipfile.ZipFile(tmp_path / "submission.zip") as archive:
        assert len(json.loads(archive.read("results.json"))) == len(json.loads(pred.read_text()))


def test_eval_threshold_changes_tracking_only(tmp_path):
    out0, out5 = tmp_path / "m0.json", tmp_path / "m5.json"
    args = ["eval", "--gt", str(DATA / "blobs_gt.json"), "--pred", str(DATA / "blobs_results.json")]
    assert main(args + ["--out", str(out0), "--track-score-thr", "0"]) == 0
    assert main(args + ["--out", str(out5)]) == 0
    m0, m5 = json.loads(out0.read_text()), json.loads(out5.read_text())
    assert [m0[k] for k in AP_KEYS] == [m5[k] for k in AP_KEYS]
    expected = json.loads((DATA / "blobs_trackeval.json").read_text())
    assert m0["tracking"]["pooled"]["CLR_FP"] == expected["0.0"]["pooled"]["CLR_FP"]
    assert m5["tracking"]["pooled"]["CLR_FP"] == expected["0.5"]["pooled"]["CLR_FP"]


def test_eval_bad_input_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    results = json.loads((DATA / "boxes_results.json").read_text())
    results[4]["score"] = None
    bad.write_text(json.dumps(results))
    code = main(["eval", "--gt", str(DATA / "boxes_gt.json"), "--pred", str(bad), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "result 4 (video" in err and "field 'score'" in err and str(bad) in err
    assert not (tmp_path / "m.json").exists()
    code = main(["eval", "--gt", str(tmp_path / "nope.json"), "--pred", str(bad)])
    assert code == 2 and "ground-truth file not found" in capsys.readouterr().err


def test_per_category_marks_classes_without_gt_or_predictions_as_trackeval_counts_them(tmp_path, capsys):
    """TrackEval's Evaluator averages every GT category, empty ones as 0 (ignore_empty_classes=False): class_avg
    keeps that (it equals TrackEval, test above), and the table shows such classes as - with the average
    over the others beside it."""
    gt = json.loads((DATA / "blobs_gt.json").read_text())
    gt["categories"].append({"id": 99, "name": "unused"})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert main(["eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(DATA / "blobs_results.json"),
                 "--per-category", "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "m.json").read_text())
    per_class = metrics["tracking"]["per_category"]
    assert per_class["99"]["empty"] and per_class["99"]["HOTA"] == 0.0
    assert not any(v["empty"] for k, v in per_class.items() if k != "99")
    row = next(line for line in out.splitlines() if line.startswith("99 unused"))
    assert row.split()[2:] == ["-", "-", "-", "-", "-"]
    kept = [v["HOTA"] for k, v in per_class.items() if k != "99"]
    assert f"over the other {len(kept)}: HOTA {100 * sum(kept) / len(kept):.1f}" in out
    n = len(per_class)
    assert metrics["tracking"]["class_avg"]["HOTA"] == pytest.approx(sum(kept) / n)  # empty counted as 0
