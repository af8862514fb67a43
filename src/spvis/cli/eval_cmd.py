"""`spvis eval`: score a results file against a YTVIS/OVIS GT json; print a table, write metrics.json."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="video AP/AR (official YouTube-VIS/OVIS rules) and tracking metrics (HOTA, MOTA, IDF1)",
        description="Evaluate a results file (json or server zip) against a YouTube-VIS/OVIS ground-truth json.")
    parser.add_argument("--gt", required=True, help="ground-truth json (YouTube-VIS/OVIS format)")
    parser.add_argument("--pred", required=True, help="results json or server zip (results.json at its root)")
    parser.add_argument("--out", help="where to write metrics.json (default: metrics.json beside --pred)")
    parser.add_argument("--track-score-thr", type=float, default=0.5,
                        help="tracking metrics count predictions with score >= this (default 0.5)")
    parser.add_argument("--per-category", action="store_true", help="print and store per-category metrics")
    parser.add_argument("--zip", help="also write the validated predictions as a benchmark-server zip here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spvis.errors import SpvisError
    from spvis.evaluation.evaluator import evaluate_loaded
    from spvis.evaluation.ground_truth import load_ground_truth
    from spvis.evaluation.report import format_metrics
    from spvis.evaluation.results_io import load_results, write_results
    from spvis.utils.atomic_io import atomic_write_json

    if not math.isfinite(args.track_score_thr):
        raise SpvisError(f"--track-score-thr must be a finite number, got {args.track_score_thr}")
    gt = load_ground_truth(Path(args.gt))
    results = load_results(Path(args.pred), gt)
    metrics = evaluate_loaded(gt, results, track_score_thr=args.track_score_thr, per_category=args.per_category)
    print(format_metrics(metrics, per_category=args.per_category))
    out = Path(args.out) if args.out else Path(args.pred).with_name("metrics.json")
    atomic_write_json(out, metrics, indent=1)
    print(f"\nmetrics written to {out}")
    if args.zip:
        entries = [{"video_id": r.video_id, "category_id": r.category_id, "score": r.score,
                    "segmentations": r.rles} for r in results]
        write_results(None, entries, zip_path=args.zip)
        print(f"server zip written to {args.zip}")
    return 0
