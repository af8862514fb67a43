"""`spvis eval`: score predictions against ground truth; print a table, write metrics.json.

``--task vis`` (default): a results file against a YTVIS/OVIS GT json. ``--task vps``: a VIPSeg submission
folder (pred.json + pan_pred/) against the GT json and masks (VPQ, STQ). ``--task vss``: a folder of label
PNGs against a VSPW split (mIoU, Acc, fwIoU, VC8, VC16, VC16_dvis).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from spvis.cli.device_args import add_threads_argument, apply_threads


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="video AP/AR (official YouTube-VIS/OVIS rules) and tracking metrics (HOTA, MOTA, IDF1)",
        description="Evaluate a results file (json or server zip) against a YouTube-VIS/OVIS ground-truth json "
                    "(--task vis), a VIPSeg submission folder (--task vps: VPQ, STQ) or VSPW label maps "
                    "(--task vss: mIoU, VC).")
    parser.add_argument("--task", choices=("vis", "vps", "vss"), default="vis",
                        help="vis: video instance AP (default); vps: VIPSeg VPQ + STQ; vss: VSPW mIoU + VC")
    parser.add_argument("--gt", required=True, help="vis/vps: ground-truth json (YouTube-VIS/OVIS, VIPSeg "
                                                    "panoptic_gt_*.json); vss: the VSPW_480p folder")
    parser.add_argument("--pred", required=True, help="vis: results json or server zip (results.json at its root); "
                                                      "vps: folder with pred.json and pan_pred/; vss: folder of "
                                                      "<video>/<frame>.png (values 0..123)")
    parser.add_argument("--gt-masks", help="vps: the GT panomasksRGB folder (default: beside --gt)")
    parser.add_argument("--split", default="val", help="vss: the VSPW split to score (default val)")
    parser.add_argument("--out", help="the metrics json file to write (default: metrics.json beside the --pred "
                                      "file, or inside the --pred folder); an existing folder is refused")
    parser.add_argument("--track-score-thr", type=float, default=0.5,
                        help="tracking metrics count predictions with score >= this (default 0.5)")
    parser.add_argument("--per-category", action="store_true", help="print and store per-category metrics")
    parser.add_argument("--zip", help="also write the validated predictions as a benchmark-server zip here")
    add_threads_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    apply_threads(args)
    if args.task != "vis":
        return run_segmentation(args)
    from spvis.errors import SpvisError
    from spvis.evaluation.evaluator import evaluate_loaded
    from spvis.evaluation.ground_truth import load_ground_truth
    from spvis.evaluation.report import format_metrics
    from spvis.evaluation.results_io import load_results, write_results
    from spvis.utils.atomic_io import atomic_write_json, check_output_file

    if not math.isfinite(args.track_score_thr):
        raise SpvisError(f"--track-score-thr must be a finite number, got {args.track_score_thr}")
    out = check_output_file(_metrics_path(args.out, Path(args.pred).with_name("metrics.json")))
    if args.zip:
        check_output_file(args.zip, "--zip")
    gt = load_ground_truth(Path(args.gt))
    results = load_results(Path(args.pred), gt)
    metrics = evaluate_loaded(gt, results, track_score_thr=args.track_score_thr, per_category=args.per_category)
    print(format_metrics(metrics, per_category=args.per_category))
    atomic_write_json(out, metrics, indent=1)
    print(f"\nmetrics written to {out}")
    if args.zip:
        entries = [{"video_id": r.video_id, "category_id": r.category_id, "score": r.score,
                    "segmentations": r.rles} for r in results]
        write_results(None, entries, zip_path=args.zip)
        print(f"server zip written to {args.zip}")
    return 0


def run_segmentation(args: argparse.Namespace) -> int:
    """``--task vps`` / ``--task vss``: evaluate, print the table, write metrics.json."""
    from spvis.errors import SpvisError
    from spvis.utils.atomic_io import atomic_write_json, check_output_file

    if args.zip:
        raise SpvisError(f"--zip applies to --task vis only (a {args.task} submission is already a folder)")
    pred = Path(args.pred)
    out = check_output_file(_metrics_path(args.out, pred / "metrics.json" if pred.is_dir()
                                          else pred.with_name("metrics.json")))

    if args.task == "vps":
        from spvis.evaluation.vps import evaluate_vps, format_vps_metrics

        metrics = evaluate_vps(args.gt, args.gt_masks, args.pred, per_category=args.per_category)
        print(format_vps_metrics(metrics))
    else:
        from spvis.evaluation.vss import evaluate_vss, format_vss_metrics

        metrics = evaluate_vss(args.gt, args.split, args.pred)
        print(format_vss_metrics(metrics))
    atomic_write_json(out, metrics, indent=1)
    print(f"\nmetrics written to {out}")
    return 0


def _metrics_path(out: str | None, default: Path) -> Path:
    """Where metrics.json goes: the ``--out`` file (an existing folder is refused by ``check_output_file``: the
    name is the user's to choose, not ours to guess) or ``default``."""
    return Path(out) if out else default
