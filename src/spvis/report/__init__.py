"""``spvis report``: a self-contained HTML evaluation report (tables, PR curves, error analysis, thumbnails).

``write_report`` loads and validates the inputs exactly as ``spvis eval`` does (same one-line errors), takes
every table number from ``evaluate_loaded`` and the PR curves from the AP accumulation, and writes
``OUT/index.html`` atomically. The AP accumulation runs twice (once inside ``evaluate_loaded``, once for the
curves); the two are checked to agree.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from spvis import __version__
from spvis.data.ytvis import parse_videos
from spvis.errors import SpvisError
from spvis.evaluation.evaluator import evaluate_loaded
from spvis.evaluation.ground_truth import GroundTruth, load_ground_truth
from spvis.evaluation.results_io import ResultTrack, load_results
from spvis.evaluation.vis_ap import evaluate_ap
from spvis.report.analysis import ReportAnalysis, analyse
from spvis.report.error_costs import analyze_loaded
from spvis.report.gallery import video_thumbnails
from spvis.report.html import ReportContent, render_report
from spvis.utils.atomic_io import atomic_open
from spvis.utils.json_io import read_json

__all__ = ["write_report", "build_report_html", "analyse", "ReportAnalysis"]

REPORT_NAME = "index.html"
WORST_VIDEOS_SHOWN = 3
FRAMES_PER_VIDEO = 4


def _file_mode() -> int:
    """Mode of a newly created regular file under the process umask (0644 under umask 022)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)  # no /proc: read it by setting it (restored at once)
    os.umask(umask)
    return 0o666 & ~umask


def _frame_names(gt_source: str | os.PathLike | dict) -> dict[int, list[str]]:
    """Video id -> frame file names (the evaluation GT keeps only sizes; thumbnails need the paths)."""
    if isinstance(gt_source, dict):
        path, data = Path("<gt dict>"), gt_source
    else:
        path = Path(gt_source)
        data = read_json(path, what="ground-truth file")
    return {v.id: v.file_names for v in parse_videos(path, data)}


def build_report_html(gt: GroundTruth, results: list[ResultTrack], *, gt_source: str | os.PathLike | dict,
                      pred_label: str, image_root: Path | None = None, track_score_thr: float = 0.5) -> str:
    """The report page of loaded, validated inputs; ``gt_source`` is what ``gt`` was loaded from."""
    metrics = evaluate_loaded(gt, results, track_score_thr=track_score_thr, per_category=True)
    ap = evaluate_ap(gt, results)
    mismatch = [k for k, v in ap.stats.items() if metrics[k] != v]
    if mismatch:  # the curves must come from the very accumulation the table reports
        raise RuntimeError(f"AP accumulation is not reproducible: {mismatch} differ between two runs")
    analysis = analyse(gt, results, track_score_thr=track_score_thr)
    gallery = []
    if image_root is not None:
        names = _frame_names(gt_source)
        shown = [va for va in analysis.worst_first() if va.gt_tracks or va.kept][:WORST_VIDEOS_SHOWN]
        gallery = [(va, video_thumbnails(va, names[va.video.id], image_root, max_frames=FRAMES_PER_VIDEO))
                   for va in shown]
    num_gt = sum(len(t) for t in gt.tracks_by_video.values())
    header = {
        "ground truth": gt.source, "predictions": pred_label,
        "image root": str(image_root) if image_root is not None else "– (no thumbnails)",
        "videos": str(len(gt.videos)), "categories": str(len(gt.categories)), "GT tracks": str(num_gt),
        "predictions (tracks)": f"{len(results)} ({sum(r.score >= track_score_thr for r in results)} with score ≥ "
                                f"{track_score_thr:g}, counted by the tracking metrics)",
        "spvis version": __version__,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    content = ReportContent(metrics=metrics, ap=ap, analysis=analysis,
                            category_names={int(c["id"]): str(c.get("name", c["id"])) for c in gt.categories},
                            header=header, gallery=gallery, image_root_given=image_root is not None,
                            ap_errors=analyze_loaded(gt, results))
    return render_report(content)


def write_report(gt: str | os.PathLike | dict, results: str | os.PathLike | list, out_dir: str | os.PathLike, *,
                 image_root: str | os.PathLike | None = None, track_score_thr: float = 0.5) -> Path:
    """Evaluate ``results`` against ``gt`` (paths or loaded json) and write ``out_dir/index.html``; returns its path.

    Raises ``SpvisError`` (one line) for a bad output folder or image root and ``DataFormatError`` for bad
    inputs, before anything is written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SpvisError(f"{out}: --out must be a folder, but a file of that name exists")
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise SpvisError(f"{root}: image root not found (--image-root must be the folder the GT file_names "
                         "are relative to)")
    ground_truth = load_ground_truth(gt if isinstance(gt, dict) else Path(gt))
    loaded = load_results(results, ground_truth)
    pred_label = str(results) if isinstance(results, (str, os.PathLike)) else "<results list>"
    page = build_report_html(ground_truth, loaded, gt_source=gt, pred_label=pred_label, image_root=root,
                             track_score_thr=track_score_thr)
    path = out / REPORT_NAME
    with atomic_open(path, "w") as handle:
        handle.write(page)
        os.fchmod(handle.fileno(), _file_mode())  # the temporary file is created 0600; a report is for sharing
    return path
