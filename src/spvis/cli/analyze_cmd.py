"""`spvis analyze`: how many AP points each error type costs (TIDE-style oracles on video IoU)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze", help="AP error analysis: the AP each error type costs, fixed by an oracle (TIDE / TIVE style)",
        description="Assign every prediction an error type at video IoU 0.5 / 0.1 (classification, duplicate, "
                    "mask quality, association, class + mask, background; missed GT), fix each type alone with "
                    "an oracle and recompute the official YouTube-VIS AP; also re-link every predicted frame to "
                    "the GT track it overlaps most (oracle association: what a perfect tracker would reach "
                    "with the same per-frame masks). Prints a table; --out writes the full analysis as json.")
    parser.add_argument("--gt", required=True, help="ground-truth json (YouTube-VIS/OVIS format)")
    parser.add_argument("--pred", required=True, help="results json or server zip (results.json at its root)")
    parser.add_argument("--out", help="write the analysis json here (refused if the file exists, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="let --out replace an existing file")
    parser.add_argument("--json", action="store_true", help="print the analysis json instead of the table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from spvis.report.error_costs import analyze, check_analysis_output, format_analysis, write_analysis

    out = None
    if args.out:
        out = check_analysis_output(args.out, overwrite=args.overwrite, inputs={"--gt": args.gt, "--pred": args.pred})
    analysis = analyze(args.gt, args.pred)
    print(json.dumps(analysis, indent=1) if args.json else format_analysis(analysis))
    if out is not None:
        write_analysis(out, analysis)
        if not args.json:
            print(f"\nanalysis written to {out}")
    return 0
