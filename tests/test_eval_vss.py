"""VSPW mIoU / Acc / fwIoU and VC8 / VC16 / VC16_dvis (DVIS++ eval_miou_vspw.py / eval_vc_vspw.py rules, reference §5):
every quirk by hand, a naive loop reference on random videos, and ``spvis eval --task vss`` with its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spvis.cli.main import main
from spvis.data.synth_panoptic import generate_panoptic_dataset, write_perfect_vss_predictions
from spvis.evaluation.vss import VSSAccumulator, vc_windows


def score(videos) -> dict:
    acc = VSSAccumulator()
    for gt, pred in videos:
        acc.add([np.asarray(g, dtype=np.uint8) for g in gt], [np.asarray(p, dtype=np.uint8) for p in pred])
    return acc.result()


# -------------------------------------------------------------------------------------------------------------
# hand-computed quirks


def test_miou_counts_only_classes_with_gt_pixels():
    gt = np.array([[1, 1, 1, 1], [1, 2, 2, 2]])  # raw 1 -> class 0 (5 px), raw 2 -> class 1 (3 px)
    pred = np.array([[0, 0, 0, 0], [0, 1, 5, 5]])  # class 5 only predicted
    r = score([([gt], [pred])])
    # IoU_0 = 5 / (5 + 5 - 5) = 1; IoU_1 = 1 / (3 + 1 - 1) = 1/3; class 5 has no GT: mIoU = (1 + 1/3) / 2
    assert r["mIoU"] == pytest.approx(100 * 2 / 3, abs=1e-12)  # (over all three: 4/9)
    assert r["Acc"] == pytest.approx(100 * 6 / 8, abs=1e-12)  # 5 + 1 correct of 8
    assert r["mAcc"] == pytest.approx(100 * (1 + 1 / 3) / 2, abs=1e-12)
    assert r["fwIoU"] == pytest.approx(100 * (5 / 8 * 1 + 3 / 8 * 1 / 3), abs=1e-12)


def test_others_and_void_are_ignored_in_miou():
    gt = np.array([[1, 1, 1, 1], [1, 2, 2, 2], [0, 0, 255, 255]])
    pred = np.array([[0, 0, 0, 0], [0, 1, 5, 5], [3, 7, 3, 9]])
    r = score([([gt], [pred])])
    assert r["mIoU"] == pytest.approx(100 * 2 / 3, abs=1e-12) and r["Acc"] == pytest.approx(75.0, abs=1e-12)


def _constant_video(length: int, changes: dict[int, int] | None = None, size=(2, 3)):
    gt = [np.ones(size, dtype=np.uint8) for _ in range(length)]
    pred = [np.full(size, (changes or {}).get(t, 0), dtype=np.uint8) for t in range(length)]
    return gt, pred


def test_vc_has_l_minus_n_windows_the_last_is_skipped():
    # L = 10, n = 8: windows start at 0 and 1 only (L - n = 2); frames 2..9 would be a third window
    assert len(vc_windows(*_constant_video(10), 8)) == 2
    r = score([_constant_video(10, {9: 3})])  # the prediction changes in the last frame only: no window sees it
    assert r["VC8"] == pytest.approx(100.0)
    r = score([_constant_video(10, {8: 3})])  # frame 8 is in window 1 (frames 1..8): acc 0 -> (1 + 0) / 2
    assert r["VC8"] == pytest.approx(50.0)
    assert np.isnan(r["VC16"]) and r["VC16_dvis"] == pytest.approx(50.0)  # 10 <= 16 frames: no VC16 window
    assert len(vc_windows(*_constant_video(8), 8)) == 0  # videos with L <= n are skipped


def test_vc_is_the_window_weighted_mean_and_skips_nan_windows():
    flicker = _constant_video(12, {t: t % 2 for t in range(12)})  # prediction changes every frame: 4 windows of 0
    # 2 windows of 1 (perfect, L = 10) and 4 windows of 0: 2 / 6, not the mean of per-video means (0.5)
    assert score([_constant_video(10), flicker])["VC8"] == pytest.approx(100 / 3, abs=1e-12)
    gt = [np.full((2, 3), 1 + t % 2, dtype=np.uint8) for t in range(10)]  # GT changes everywhere: G empty -> NaN
    r = score([_constant_video(10), (gt, [np.zeros((2, 3), np.uint8)] * 10)])
    assert r["VC8"] == pytest.approx(100.0)  # the two NaN windows are dropped


def test_vc_compares_raw_gt_values_including_others_and_void():
    gt, pred = [], []
    for t in range(9):
        g = np.ones((2, 2), dtype=np.uint8)
        g[:, 1] = (0, 255)[t % 2]  # right column alternates others / void: not constant, not in G
        gt.append(g)
        p = np.zeros((2, 2), dtype=np.uint8)
        p[:, 1] = t  # changes every frame, but only where G is empty
        pred.append(p)
    assert score([(gt, pred)])["VC8"] == pytest.approx(100.0)
    for g in gt:
        g[:, 1] = 255  # constant void: in G, and the prediction changes there -> acc = 2 / 4
    assert score([(gt, pred)])["VC8"] == pytest.approx(50.0)


def test_vc16_dvis_pools_the_vc8_and_vc16_windows():
    r = score([_constant_video(20, {18: 3})])
    # VC8: windows 0..11, only window 11 (frames 11..18) sees frame 18 -> 11/12; VC16: windows 0..3, window 3 -> 3/4
    assert r["VC8"] == pytest.approx(100 * 11 / 12, abs=1e-12)
    assert r["VC16"] == pytest.approx(100 * 3 / 4, abs=1e-12)
    assert r["VC16_dvis"] == pytest.approx(100 * (11 + 3) / 16, abs=1e-12)  # DVIS++ never resets its list


# -------------------------------------------------------------------------------------------------------------
# naive reference (written from reference §5, loops per pixel and per window)


def naive_vss(videos, num_classes: int = 124) -> dict:
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for gt, pred in videos:
        for g, p in zip(gt, pred):
            for y in range(g.shape[0]):
                for x in range(g.shape[1]):
                    value = int(g[y, x])
                    if value in (0, 255) or value - 1 >= num_classes:
                        continue
                    conf[value - 1, int(p[y, x])] += 1
    ious, has_gt = [], []
    for k in range(num_classes):
        row, col, tp = conf[k, :].sum(), conf[:, k].sum(), conf[k, k]
        if row > 0:
            ious.append(tp / (row + col - tp))
    out = {"mIoU": 100 * sum(ious) / len(ious) if ious else float("nan")}
    pooled = []
    for n in (8, 16):
        accs = []
        for gt, pred in videos:
            L = len(gt)
            if L <= n:
                continue
            for i in range(L - n):
                g_count = both = 0
                for y in range(gt[0].shape[0]):
                    for x in range(gt[0].shape[1]):
                        g_same = all(gt[i + j][y, x] == gt[i][y, x] for j in range(1, n))
                        p_same = all(pred[i + j][y, x] == pred[i][y, x] for j in range(1, n))
                        g_count += g_same
                        both += g_same and p_same
                accs.append(both / g_count if g_count else float("nan"))
        pooled += accs
        kept = [a for a in accs if a == a]
        out[f"VC{n}"] = 100 * sum(kept) / len(kept) if kept else float("nan")
    kept = [a for a in pooled if a == a]
    out["VC16_dvis"] = 100 * sum(kept) / len(kept) if kept else float("nan")
    return out


def random_videos(rng: np.random.Generator, count: int, size=(4, 5)):
    """Label videos that mostly persist in time: each frame re-draws a few pixels of the previous one."""
    videos = []
    for _ in range(count):
        L = int(rng.integers(1, 22))
        gt = [rng.choice([0, 1, 2, 3, 255], size=size).astype(np.uint8)]
        pred = [rng.integers(0, 4, size=size).astype(np.uint8)]
        for _ in range(L - 1):
            g, p = gt[-1].copy(), pred[-1].copy()
            g[rng.random(size) < 0.04] = rng.choice([0, 1, 2, 3, 255])
            p[rng.random(size) < 0.06] = rng.integers(0, 4)
            gt.append(g)
            pred.append(p)
        videos.append((gt, pred))
    return videos


def _close(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_equals_naive_reference(seed):
    videos = random_videos(np.random.default_rng(seed), int(np.random.default_rng(seed).integers(1, 5)))
    fast, slow = score(videos), naive_vss(videos)
    for key in ("mIoU", "VC8", "VC16", "VC16_dvis"):
        assert _close(fast[key], slow[key]), (key, fast[key], slow[key])


def test_random_cases_have_real_vc_windows():
    values = [score(random_videos(np.random.default_rng(s), 3))["VC8"] for s in range(20)]
    assert sum(0 < v < 100 for v in values if v == v) > 10


# -------------------------------------------------------------------------------------------------------------
# files and CLI


@pytest.fixture(scope="module")
def vss_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vss")
    generate_panoptic_dataset(out, task="vss", videos=3, frames=18, size="32x40", categories=3, valid_fraction=0.4,
                              seed=2)
    return out / "VSPW_480p"


def _eval(capsys, root: Path, pred: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["eval", "--task", "vss", "--gt", str(root), "--pred", str(pred), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_perfect_predictions_score_100(vss_set, tmp_path, capsys):
    pred = write_perfect_vss_predictions(vss_set, "val", tmp_path / "pred")
    code, out, err = _eval(capsys, vss_set, pred, "--split", "val")
    assert code == 0 and err == "" and "mIoU" in out
    metrics = json.loads((pred / "metrics.json").read_text())
    for key in ("mIoU", "Acc", "fwIoU", "VC8", "VC16", "VC16_dvis"):
        assert metrics[key] == pytest.approx(100.0), key


def test_cli_scores_a_masks_only_copy_of_the_ground_truth(vss_set, tmp_path, capsys):
    """The official scripts read the split list and the masks only: no origin/ frames are needed to score."""
    import shutil

    copy = tmp_path / "masks_only"
    shutil.copytree(vss_set, copy, ignore=shutil.ignore_patterns("origin"))
    assert not list(copy.rglob("origin")) and list(copy.rglob("mask"))
    pred = write_perfect_vss_predictions(vss_set, "val", tmp_path / "pred")
    code, out, err = _eval(capsys, copy, pred, "--split", "val")
    assert code == 0 and err == "", err
    metrics = json.loads((pred / "metrics.json").read_text())
    assert metrics["mIoU"] == pytest.approx(100.0) and metrics["scale"] == 100 and "x100" in metrics["scale_note"]
    video = (copy / "val.txt").read_text().split()[0]
    shutil.rmtree(copy / "data" / video / "mask")  # a split video without masks: one line naming it
    (pred / "metrics.json").unlink()
    code, _, err = _eval(capsys, copy, pred, "--split", "val")
    assert code == 2 and "\n" not in err.strip() and re.search(rf"val\.txt: video {video}: field 'mask': mask "
                                                                rf"folder not found", err), err


def _first(pred: Path) -> Path:
    return sorted(sorted(p for p in pred.iterdir() if p.is_dir())[0].iterdir())[0]


def _out_of_range(pred: Path) -> str:
    png = _first(pred)
    Image.fromarray(np.full((32, 40), 124, dtype=np.uint8)).save(png)
    return r"field 'value': holds 124, outside the label range 0\.\.123"


def _missing(pred: Path) -> str:
    _first(pred).unlink()
    return r"field 'pred': missing frame"


def _wrong_size(pred: Path) -> str:
    Image.fromarray(np.zeros((16, 40), dtype=np.uint8)).save(_first(pred))
    return r"field 'size': is 16x40 but the ground-truth mask is 32x40"


def _rgb(pred: Path) -> str:
    Image.fromarray(np.zeros((32, 40, 3), dtype=np.uint8)).save(_first(pred))
    return r"field 'pred': must be a single-channel label PNG"


ERRORS = [_out_of_range, _missing, _wrong_size, _rgb]


@pytest.mark.parametrize("mutate", ERRORS, ids=[f.__name__.strip("_") for f in ERRORS])
def test_cli_bad_predictions_are_one_line_exit_2(vss_set, tmp_path, capsys, mutate):
    pred = write_perfect_vss_predictions(vss_set, "val", tmp_path / "pred")
    message = mutate(pred)
    code, _, err = _eval(capsys, vss_set, pred)
    line = err.strip()
    assert code == 2 and "\n" not in line and line.startswith("spvis eval: error: "), err
    assert re.search(r"pred/synth_\d+/\d+\.png: video synth_\d+: frame \d+: " + message, line), line


def test_cli_bad_ground_truth_paths(vss_set, tmp_path, capsys):
    code, _, err = _eval(capsys, vss_set, tmp_path / "none")
    assert code == 2 and "prediction folder not found" in err
    code, _, err = _eval(capsys, vss_set, tmp_path, "--split", "nope")
    assert code == 2 and "nope.txt: split file not found" in err
