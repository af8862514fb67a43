"""``spvis analyze``: how many AP points each error type costs, measured by fixing it with an oracle.

Every prediction is assigned a TIDE error type at video IoU 0.5 / 0.1 (``tide``); each type is then fixed alone
(``oracles``) and the official YouTube-VIS AP recomputed with the project's evaluator: dAP = AP(fixed) -
AP(base). The fixes overlap, so the rows need not add up to 1 - AP (TIDE's caveat). A fix can also lower AP
(removing a prediction can drop a category's only true positive at a stricter threshold); values are reported
as computed, not clipped. The oracle association row re-links every predicted frame by GT identity: the AP a
perfect tracker would reach with the same per-frame masks.

Layout of the returned dict (rates as fractions, like ``evaluate``; None where an AP is undefined, i.e. no GT
left)::

    {"AP", "AP50": base values,
     "errors": {type: {"dAP", "dAP50", "count", "changed"}} for ERROR_TYPES in order,
     "oracle_association": {"AP", "AP50", "dAP", "dAP50", "changed"},
     "thresholds": {"foreground", "background"},
     "assignments": [{"result", "video_id", "type", "gt_id"}] one per error, "missed_gt": [GT ids],
     "info": {"gt", "num_videos", "num_gt_tracks", "num_results"}}

``count`` is the number of errors of that type at IoU 0.5 (GT tracks for missed); ``changed`` the number of
predictions the fix changed or removed (GT tracks dropped for missed): the mask and association fixes also
act on true positives, which cost AP at the thresholds above 0.5.
"""

from __future__ import annotations

import os
from pathlib import Path

from spvis.errors import SpvisError
from spvis.evaluation.ground_truth import GroundTruth, load_ground_truth
from spvis.evaluation.results_io import ResultTrack, load_results
from spvis.evaluation.vis_ap import evaluate_ap
from spvis.report.oracles import FIXES, oracle_association
from spvis.report.tide import BACKGROUND_IOU, ERROR_TYPES, FOREGROUND_IOU, assign_errors
from spvis.utils.atomic_io import atomic_write_json, check_output_file

ROW_LABELS = {"classification": "classification", "duplicate": "duplicate", "mask": "mask quality",
              "association": "association", "both": "class + mask", "background": "background",
              "missed": "missed GT"}
ORACLE_LABEL = "oracle association"


def _defined(value: float) -> float | None:
    return None if value == -1 else value


def _delta(fixed: float, base: float) -> float | None:
    return None if fixed == -1 or base == -1 else fixed - base


def _ap(gt: GroundTruth, results: list[ResultTrack]) -> tuple[float, float]:
    stats = evaluate_ap(gt, results).stats
    return stats["AP"], stats["AP50"]


def analyze_loaded(gt: GroundTruth, results: list[ResultTrack]) -> dict:
    """Error costs of already loaded and validated inputs (layout in the module docstring)."""
    base = _ap(gt, results)
    assignment = assign_errors(gt, results)
    errors = {}
    for kind in ERROR_TYPES:
        fixed = FIXES[kind](assignment, gt, results)
        ap = _ap(fixed.gt, fixed.results) if fixed.changed else base
        errors[kind] = {"dAP": _delta(ap[0], base[0]), "dAP50": _delta(ap[1], base[1]),
                        "count": assignment.count(kind), "changed": fixed.changed}
    relinked = oracle_association(assignment, gt, results)
    oracle = _ap(relinked.gt, relinked.results) if relinked.changed else base
    return {
        "AP": _defined(base[0]), "AP50": _defined(base[1]), "errors": errors,
        "oracle_association": {"AP": _defined(oracle[0]), "AP50": _defined(oracle[1]),
                               "dAP": _delta(oracle[0], base[0]), "dAP50": _delta(oracle[1], base[1]),
                               "changed": relinked.changed},
        "thresholds": {"foreground": FOREGROUND_IOU, "background": BACKGROUND_IOU},
        "assignments": [{"result": e.result_index, "video_id": e.video_id, "type": e.kind, "gt_id": e.gt_id}
                        for _, e in sorted(assignment.errors.items())],
        "missed_gt": [g.id for g in assignment.missed],
        "info": {"gt": gt.source, "num_videos": len(gt.videos),
                 "num_gt_tracks": sum(len(t) for t in gt.tracks_by_video.values()), "num_results": len(results)},
    }


def analyze(gt: str | os.PathLike | dict, pred: str | os.PathLike | list) -> dict:
    """Error costs of predictions (results json / server zip path, or a list) against a GT json (path or dict).

    Raises ``DataFormatError`` (one line naming the file and field) for bad inputs."""
    ground_truth = load_ground_truth(gt if isinstance(gt, dict) else Path(gt))
    return analyze_loaded(ground_truth, load_results(pred, ground_truth))


def _points(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def error_rows(analysis: dict) -> list[tuple[str, str, str, str, str]]:
    """(label, dAP, dAP50, count, changed) display cells, the error types then the oracle association row."""
    rows = [(ROW_LABELS[k], _points(v["dAP"], True), _points(v["dAP50"], True), str(v["count"]), str(v["changed"]))
            for k, v in analysis["errors"].items()]
    o = analysis["oracle_association"]
    rows.append((ORACLE_LABEL, _points(o["dAP"], True), _points(o["dAP50"], True), "", str(o["changed"])))
    return rows


def format_analysis(analysis: dict) -> str:
    """The table ``spvis analyze`` prints: base AP, then one row per error type and the oracle row (x100)."""
    thr = analysis["thresholds"]
    lines = [f"AP error analysis (TIDE-style oracles on video IoU, foreground {thr['foreground']:g}, "
             f"background {thr['background']:g}; x100)",
             f"base AP {_points(analysis['AP'])}   AP50 {_points(analysis['AP50'])}", ""]
    header = ("error type", "dAP", "dAP50", "count", "changed")
    rows = error_rows(analysis)
    width = max(len(r[0]) for r in rows + [header])
    fmt = "{:<%d}  {:>6}  {:>6}  {:>6}  {:>7}" % width
    lines.append(fmt.format(*header))
    lines += [fmt.format(*r) for r in rows[:-1]]
    lines.append("-" * len(lines[-1]))
    lines.append(fmt.format(*rows[-1]))
    o = analysis["oracle_association"]
    lines.append(f"(oracle association: every predicted frame re-linked to the GT it overlaps most: "
                 f"AP {_points(o['AP'])}, AP50 {_points(o['AP50'])})")
    return "\n".join(lines)


def check_analysis_output(out: str | os.PathLike, *, overwrite: bool,
                          inputs: dict[str, str | os.PathLike]) -> Path:
    """``out`` as a Path once it is known writable, before any work: an existing file is refused unless
    ``overwrite``, and one of ``inputs`` ({flag: path}) always is."""
    path = check_output_file(out)
    for flag, given in inputs.items():
        if Path(given).is_file() and path.exists() and path.resolve() == Path(given).resolve():
            raise SpvisError(f"{path}: --out is the {flag} file; give another name")
    if path.exists() and not overwrite:
        raise SpvisError(f"{path}: exists; pass --overwrite to replace it")
    return path


def write_analysis(path: str | os.PathLike, analysis: dict) -> None:
    """Write the analysis dict as json, atomically (a reader sees the old file or the new one, never half)."""
    atomic_write_json(path, analysis, indent=1)
