"""``spvis analyze``: how many AP points each error type costs, measured by fixing it with an oracle.

TIDE's procedure on the official YouTube-VIS AP: at each official IoU threshold t (0.5:0.95) every prediction
is assigned an error type with t as the foreground threshold (``tide``), each type is fixed alone (``oracles``)
and the AP at t recomputed with the project's evaluator; dAP = mean over t of AP_t(fixed) - AP_t(base), i.e.
the official AP of the fixed inputs (AP is the mean of the AP_t) minus the base AP, and dAP50 the term at 0.5.
The rows overlap, so they need not add up to 1 - AP (TIDE's caveat); a fix may also lower the AP a little
(TIDE clips such values to 0; they are reported here as computed). The oracle association row re-links every
predicted frame by GT identity once and recomputes the whole AP: what a tracker that knows the identities
would reach with the same per-frame masks.

Layout of the returned dict (rates as fractions, like ``evaluate``; None where an AP is undefined, i.e. no GT
left)::

    {"AP", "AP50": base values,
     "errors": {type: {"dAP", "dAP50", "count"}} for ERROR_TYPES in order,
     "oracle_association": {"AP", "AP50", "dAP", "dAP50", "changed"},
     "thresholds": {"foreground", "background"},
     "assignments": [{"result", "video_id", "type", "gt_id"}] one per error at IoU 0.5, "missed_gt": [GT ids],
     "info": {"gt", "num_videos", "num_gt_tracks", "num_results"}}

``count`` is the number of errors of that type at IoU 0.5 (GT tracks for missed); ``changed`` the number of
predictions the oracle association re-linked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spvis.errors import SpvisError
from spvis.evaluation.ground_truth import GroundTruth, GtTrack, load_ground_truth
from spvis.evaluation.results_io import ResultTrack, load_results
from spvis.evaluation.vis_ap import AREA_RANGES, IOU_THRESHOLDS, MAX_DETS, Bucket, evaluate_ap, track_ious
from spvis.report.oracles import FIXES, oracle_association
from spvis.report.tide import (BACKGROUND_IOU, ERROR_TYPES, FOREGROUND_IOU, VideoOverlaps, assign_errors,
                               compute_overlaps)
from spvis.utils.atomic_io import atomic_write_json, check_output_file

ROW_LABELS = {"classification": "classification", "duplicate": "duplicate", "mask": "mask quality",
              "association": "association", "both": "class + mask", "background": "background",
              "missed": "missed GT"}
ORACLE_LABEL = "oracle association"


def _defined(value: float) -> float | None:
    return None if value == -1 else value


def _delta(fixed: float, base: float) -> float | None:
    return None if fixed == -1 or base == -1 else fixed - base


class _KnownIous:
    """Video IoUs of (prediction, GT track) objects, each pair computed once over the ~70 evaluations of one
    analysis: a fix replaces a few prediction objects and keeps the others, so most pairs repeat. IoUs are
    integer intersection sums over unions, so a pair's value does not depend on the batch it came in."""

    def __init__(self, overlaps: dict[int, VideoOverlaps]) -> None:
        self._values: dict[tuple[int, int], float] = {}
        self._alive: list[object] = []  # the objects whose id() keys the cache stay alive as long as it
        for ov in overlaps.values():
            self._remember(ov.results, ov.gts, ov.video_iou)

    def _remember(self, dts: list[ResultTrack], gts: list[GtTrack], ious: np.ndarray) -> None:
        self._alive += dts + gts
        for i, d in enumerate(dts):
            for j, g in enumerate(gts):
                self._values[id(d), id(g)] = float(ious[i, j])

    def __call__(self, dts: list[ResultTrack], gts: list[GtTrack]) -> np.ndarray:
        new = [d for d in dts if any((id(d), id(g)) not in self._values for g in gts)]
        if new:
            self._remember(new, gts, track_ious(new, gts))
        return np.array([[self._values[id(d), id(g)] for g in gts] for d in dts]).reshape(len(dts), len(gts))


def _evaluate(gt: GroundTruth, results: list[ResultTrack], ious: _KnownIous) -> tuple[dict[str, float], np.ndarray]:
    """The official summary and the AP at each IoU threshold (T,) float64 (area all, 100 detections; -1 where
    undefined). Every threshold has the same defined categories, so the AP is the mean of the per-threshold APs."""
    ap = evaluate_ap(gt, results, pair_ious=ious, buckets=[Bucket("all", AREA_RANGES["all"])])  # all AP reads
    precision = ap.precision[:, :, :, 0, MAX_DETS.index(100)]  # (T, R, K)
    return ap.stats, np.array([p[p > -1].mean() if np.any(p > -1) else -1.0 for p in precision])


def _mean_ap(per_threshold: np.ndarray) -> float:
    """The AP from the per-threshold APs (-1 when undefined)."""
    return -1.0 if np.any(per_threshold == -1) else float(per_threshold.mean())


def analyze_loaded(gt: GroundTruth, results: list[ResultTrack]) -> dict:
    """Error costs of already loaded and validated inputs (layout in the module docstring)."""
    overlaps = compute_overlaps(gt, results)
    ious = _KnownIous(overlaps)
    stats, base = _evaluate(gt, results, ious)
    fixed_ap = {kind: base.copy() for kind in ERROR_TYPES}  # AP_t with that type fixed at t
    assignments = [assign_errors(gt, results, foreground_iou=thr, overlaps=overlaps) for thr in IOU_THRESHOLDS]
    for t, assignment in enumerate(assignments):
        for kind in ERROR_TYPES:
            fixed = FIXES[kind](assignment, gt, results)
            if fixed.changed:
                fixed_ap[kind][t] = _evaluate(fixed.gt, fixed.results, ious)[1][t]
    at_half = assignments[0]
    errors = {kind: {"dAP": _delta(_mean_ap(fixed_ap[kind]), _mean_ap(base)),
                     "dAP50": _delta(fixed_ap[kind][0], base[0]), "count": at_half.count(kind)}
              for kind in ERROR_TYPES}
    relinked = oracle_association(at_half, gt, results)
    oracle_stats, oracle = _evaluate(relinked.gt, relinked.results, ious) if relinked.changed else (stats, base)
    return {
        "AP": _defined(stats["AP"]), "AP50": _defined(stats["AP50"]), "errors": errors,
        "oracle_association": {"AP": _defined(oracle_stats["AP"]), "AP50": _defined(oracle_stats["AP50"]),
                               "dAP": _delta(_mean_ap(oracle), _mean_ap(base)), "dAP50": _delta(oracle[0], base[0]),
                               "changed": relinked.changed},
        "thresholds": {"foreground": FOREGROUND_IOU, "background": BACKGROUND_IOU},
        "assignments": [{"result": e.result_index, "video_id": e.video_id, "type": e.kind, "gt_id": e.gt_id}
                        for _, e in sorted(at_half.errors.items())],
        "missed_gt": [g.id for g in at_half.missed],
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


def error_rows(analysis: dict) -> list[tuple[str, str, str, str]]:
    """(label, dAP, dAP50, count) display cells: the error types, then the oracle association row (its count: the
    predictions it re-linked)."""
    rows = [(ROW_LABELS[k], _points(v["dAP"], True), _points(v["dAP50"], True), str(v["count"]))
            for k, v in analysis["errors"].items()]
    o = analysis["oracle_association"]
    rows.append((ORACLE_LABEL, _points(o["dAP"], True), _points(o["dAP50"], True), str(o["changed"])))
    return rows


def format_analysis(analysis: dict) -> str:
    """The table ``spvis analyze`` prints: base AP, then one row per error type and the oracle row (x100)."""
    thr = analysis["thresholds"]
    lines = [f"AP error analysis (TIDE-style oracles on video IoU, background {thr['background']:g}; x100; "
             f"count: errors at IoU {thr['foreground']:g})",
             f"base AP {_points(analysis['AP'])}   AP50 {_points(analysis['AP50'])}", ""]
    header = ("error type", "dAP", "dAP50", "count")
    rows = error_rows(analysis)
    width = max(len(r[0]) for r in rows + [header])
    fmt = "{:<%d}  {:>6}  {:>6}  {:>6}" % width
    lines.append(fmt.format(*header))
    lines += [fmt.format(*r) for r in rows[:-1]]
    lines.append("-" * len(lines[-1]))
    lines.append(fmt.format(*rows[-1]))
    o = analysis["oracle_association"]
    lines.append(f"(oracle association: every predicted frame re-linked to the GT it overlaps most, "
                 f"{o['changed']} predictions changed: AP {_points(o['AP'])}, AP50 {_points(o['AP50'])})")
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
