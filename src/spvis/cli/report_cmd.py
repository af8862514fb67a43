"""`spvis report`: a self-contained HTML evaluation report (OUT/index.html) of a results file against a GT json."""

from __future__ import annotations

import argparse
import math


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="self-contained HTML report: metric tables, PR curves, per-video and error analysis",
        description="Evaluate a results file (json or server zip) against a YouTube-VIS/OVIS ground-truth json, "
                    "as `spvis eval` does, and write OUT/index.html: AP and tracking tables, per-category and "
                    "per-video breakdowns, PR curves, the AP each error type costs (as `spvis analyze`), ID-switch "
                    "timelines, missed and false tracks, and (with --image-root) thumbnails of the worst videos. Everything is inline: the folder can be "
                    "mailed or served as is.")
    parser.add_argument("--gt", required=True, help="ground-truth json (YouTube-VIS/OVIS format)")
    parser.add_argument("--pred", required=True, help="results json or server zip (results.json at its root)")
    parser.add_argument("--out", required=True, help="output folder (index.html is written there)")
    parser.add_argument("--image-root", help="folder the GT file_names are relative to (thumbnails of the worst "
                                             "videos with GT and prediction outlines)")
    parser.add_argument("--track-score-thr", type=float, default=0.5,
                        help="tracking metrics and error analysis count predictions with score >= this (default 0.5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT/index.html")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spvis.errors import SpvisError
    from spvis.report import write_report
    from spvis.utils.atomic_io import check_output_dir

    if not math.isfinite(args.track_score_thr):
        raise SpvisError(f"--track-score-thr must be a finite number, got {args.track_score_thr}")
    out = check_output_dir(args.out)
    if (out / "index.html").exists() and not args.overwrite:
        raise SpvisError(f"--out {out} already holds an index.html (another report); pass --overwrite to replace "
                         f"it or choose another folder")
    path = write_report(args.gt, args.pred, args.out, image_root=args.image_root,
                        track_score_thr=args.track_score_thr)
    print(f"report written to {path}")
    return 0
