"""`spvis analyze` over several sets: the AP points each error type costs, mean over the sets (RESULTS tables).

Reads the results a `heldout_accuracy.py --save DIR` run kept (DIR/<row>/<set>/results.json) and the sets'
valid.json, runs `spvis.analyze` on each pair and prints one row per error type (mean dAP / dAP50 x100, total
count at IoU 0.5) plus the oracle-association row.

    python benchmarks/analyze_sets.py --results output/report_v4/a/0 --sets datasets/report_70{01..12}
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import spvis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="folder holding <set name>/results.json")
    parser.add_argument("--sets", nargs="+", required=True, help="dataset folders with valid.json")
    args = parser.parse_args(argv)
    analyses = [spvis.analyze(Path(s) / "valid.json", Path(args.results) / Path(s).name / "results.json")
                for s in args.sets]
    aps = [100 * a["AP"] for a in analyses]
    print(f"{len(analyses)} sets; AP {statistics.mean(aps):.1f} (mean over the sets)")
    print("| error type | dAP | dAP50 | count at IoU 0.5 |")
    print("|---|---:|---:|---:|")
    for kind in analyses[0]["errors"]:
        rows = [a["errors"][kind] for a in analyses]
        d = [100 * (r["dAP"] or 0.0) for r in rows]
        d50 = [100 * (r["dAP50"] or 0.0) for r in rows]
        print(f"| {kind} | {statistics.mean(d):+.1f} | {statistics.mean(d50):+.1f} | {sum(r['count'] for r in rows)} |")
    oracle = [100 * (a["oracle_association"]["dAP"] or 0.0) for a in analyses]
    oracle50 = [100 * (a["oracle_association"]["dAP50"] or 0.0) for a in analyses]
    print(f"| oracle association (re-link by GT identity) | {statistics.mean(oracle):+.1f} | "
          f"{statistics.mean(oracle50):+.1f} | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
