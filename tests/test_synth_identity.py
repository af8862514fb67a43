"""`spvis synth --identity hard`: deterministic, `normal` unchanged, and the ground truth really holds same-class
crossings, 10-40 frame hidden spans and border re-entries (measured from the written json); `spvis data check`
reports them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from spvis.cli.main import main
from spvis.data.identity_stats import TrackBoxes, classify_gaps, pair_crossings, video_identity_counts
from spvis.data.rle import decode_rle
from spvis.data.synth import generate_synthetic_dataset
from spvis.data.synth_render import OCC_FULL, OCC_OUT
from spvis.errors import SpvisError

HARD = dict(videos=4, frames=60, size="96x128", occlusion="heavy", valid_fraction=0.0, identity="hard")


def _digest(folder: Path, pattern: str = "*") -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob(pattern)):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _runs(labels: list, wanted: set) -> list[tuple[int, int]]:
    """(first, last) of every run of labels in ``wanted``."""
    runs, start = [], None
    for t, label in enumerate([*labels, None]):
        if label in wanted and start is None:
            start = t
        elif label not in wanted and start is not None:
            runs.append((start, t - 1))
            start = None
    return runs


def _life_gaps_by_label(ann: dict) -> tuple[list[int], int]:
    """(fully hidden span lengths, gaps with an out-of-frame frame) inside each track's life, from the GT labels."""
    present = [t for t, s in enumerate(ann["segmentations"]) if s is not None]
    first, last = present[0], present[-1]
    hidden, reentries = [], 0
    for a, b in _runs(ann["visibility"][first:last + 1], {OCC_FULL, OCC_OUT}):
        labels = ann["visibility"][first + a:first + b + 1]
        if OCC_OUT in labels:
            reentries += 1
        else:
            hidden.append(b - a + 1)
    return hidden, reentries


@pytest.fixture(scope="module")
def hard(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("hard")
    generate_synthetic_dataset(out, seed=3, frame_stride=2, **HARD)
    return out, json.loads((out / "train.json").read_text())


def test_hard_is_deterministic_per_seed(tmp_path, hard):
    small = dict(HARD, videos=2, frames=30)
    generate_synthetic_dataset(tmp_path / "a", seed=5, **small)
    generate_synthetic_dataset(tmp_path / "b", seed=5, **small)
    generate_synthetic_dataset(tmp_path / "c", seed=6, **small)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert json.loads((tmp_path / "a" / "train.json").read_text())["info"]["identity"] == "hard"


# train.json / valid.json of the configuration below written by the generator before --identity existed
NORMAL_BEFORE = {"train.json": "a1c330b8ed1dc18a3fb48f58f8897723b0f84ee68d6670480bc4520d4ec8d2eb",
                 "valid.json": "7dbb5d96feae65495ac16a700367a5082693f437b6f5413f0e28dc514b6a570c"}


def test_colour_twins_share_colour_but_not_texture(tmp_path):
    """IdentityPreset(clone=False): one category and colour, own texture and size; recorded in the json info."""
    from spvis.data.synth_identity import IdentityPreset

    generate_synthetic_dataset(tmp_path / "c", seed=5, identity_preset=IdentityPreset(clone=False),
                               **dict(HARD, videos=1, frames=20))
    generate_synthetic_dataset(tmp_path / "k", seed=5, **dict(HARD, videos=1, frames=20))
    colour = json.loads((tmp_path / "c" / "train.json").read_text())
    assert colour["info"]["identity_preset"]["clone"] is False
    assert "identity_preset" not in json.loads((tmp_path / "k" / "train.json").read_text())["info"]
    assert _digest(tmp_path / "c") != _digest(tmp_path / "k")
    with pytest.raises(SpvisError, match="applies to identity='hard' only"):
        generate_synthetic_dataset(tmp_path / "x", identity_preset=IdentityPreset(), videos=1, frames=2)


def test_normal_is_the_generator_of_before(tmp_path, capsys):
    """--identity normal writes the same bytes as no flag, and the same json as before the flag existed."""
    args = ["synth", "--videos", "4", "--frames", "20", "--size", "64x80", "--occlusion", "heavy", "--frame-stride",
            "2", "--seed", "11", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "flag"), "--identity", "normal"]) == 0
    assert main([*args, "--out", str(tmp_path / "default")]) == 0
    capsys.readouterr()
    assert _digest(tmp_path / "flag") == _digest(tmp_path / "default")
    for name, digest in NORMAL_BEFORE.items():
        assert hashlib.sha256((tmp_path / "flag" / name).read_bytes()).hexdigest() == digest, name


def test_hard_ground_truth_has_crossings_long_hidden_spans_and_reentries(hard):
    _, data = hard
    by_video: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_video.setdefault(ann["video_id"], []).append(ann)
    hidden, reentries, crossings = [], 0, 0
    for anns in by_video.values():
        for ann in anns:
            spans, back = _life_gaps_by_label(ann)
            hidden += spans
            reentries += back
        same = [(a, b) for i, a in enumerate(anns) for b in anns[i + 1:] if a["category_id"] == b["category_id"]]
        assert len(same) >= 3  # three look-alikes per video
        crossings += sum(pair_crossings(a["bboxes"], b["bboxes"]) for a, b in same)
    long = [n for n in hidden if n >= 10]
    assert crossings >= len(by_video)  # at least one crossing per video on average
    assert len(long) >= len(by_video) and all(10 <= n <= 40 for n in long)
    assert reentries >= len(by_video) // 2


def test_hard_ground_truth_is_consistent(hard):
    """Hidden and out-of-frame frames carry no mask; a returning object keeps its annotation (instance id)."""
    out, data = hard
    for ann in data["annotations"]:
        for seg, vis, box, area in zip(ann["segmentations"], ann["visibility"], ann["bboxes"], ann["areas"]):
            assert (seg is None) == (vis in (OCC_FULL, OCC_OUT)) == (box is None) == (area is None)
            if seg is not None:
                assert decode_rle(seg).sum() == area > 0
    ids = [ann["id"] for ann in data["annotations"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("stride", [3, 5])
def test_hidden_lengths_are_in_output_frames_at_low_frame_rates(tmp_path, stride):
    generate_synthetic_dataset(tmp_path, seed=4, frame_stride=stride, **dict(HARD, videos=3))
    data = json.loads((tmp_path / "train.json").read_text())
    hidden, reentries = [], 0
    for ann in data["annotations"]:
        spans, back = _life_gaps_by_label(ann)
        hidden += spans
        reentries += back
    long = [n for n in hidden if n >= 10]
    assert len(long) >= 2 and all(n <= 40 for n in long)
    assert reentries >= 1


def test_statistics_helpers_on_hand_made_boxes():
    passing = [[10.0 + 6 * t, 40.0, 20.0, 20.0] for t in range(12)]
    still = [[40.0, 42.0, 20.0, 20.0]] * 12
    assert pair_crossings(passing, still) == 1
    touch_and_back = [[10.0 + 4 * min(t, 11 - t), 40.0, 20.0, 20.0] for t in range(12)]
    assert pair_crossings(touch_and_back, still) == 0
    far_below = [[40.0, 140.0, 20.0, 20.0]] * 12
    assert pair_crossings(passing, far_below) == 0
    gaps = [[50.0, 50.0, 10.0, 10.0], None, None, [52.0, 50.0, 10.0, 10.0], [0.0, 5.0, 8.0, 10.0], None,
            [0.0, 9.0, 6.0, 10.0]]
    assert classify_gaps(gaps, 100, 100) == ([2], 1)  # the second gap touches the border on both sides
    assert classify_gaps(gaps, 100, 100, outside=[False] * 7) == ([2, 1], 0)  # labels win over geometry
    counts = video_identity_counts([TrackBoxes(1, passing), TrackBoxes(1, still), TrackBoxes(2, far_below)], 200, 200)
    assert (counts.same_class_pairs, counts.crossings) == (1, 1)


def test_data_check_prints_identity_statistics(hard, tmp_path, capsys):
    out, _ = hard
    code = main(["data", "check", str(out / "train.json"), "--no-frames", "--stats-json", str(tmp_path / "s.json")])
    text = capsys.readouterr().out
    assert code == 0
    line = next(line for line in text.splitlines() if line.startswith("identity:"))
    assert "same-class crossings" in line and "hidden spans" in line and "border re-entries" in line
    stats = json.loads((tmp_path / "s.json").read_text())["identity"]
    assert stats["same_class_crossings"] >= 1 and stats["hidden_spans_10plus"] >= 1 and stats["border_reentries"] >= 1
    assert stats["hidden_span_min"] <= stats["hidden_span_median"] <= stats["hidden_span_max"]


def test_cli_identity_arguments(tmp_path, capsys):
    code = main(["synth", "--out", str(tmp_path / "ok"), "--videos", "2", "--frames", "30", "--size", "96x128",
                 "--identity", "hard", "--valid-fraction", "0.5", "--no-progress"])
    assert code == 0 and "identity: same-class crossings" in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path / "x"), "--identity", "hard", "--max-objects", "2",
                 "--no-progress"]) == 2
    assert "--identity hard needs --max-objects of at least 3" in capsys.readouterr().err
    assert main(["synth", "--task", "vps", "--out", str(tmp_path / "y"), "--identity", "hard", "--no-progress"]) == 2
    assert "--identity applies to --task vis only" in capsys.readouterr().err
