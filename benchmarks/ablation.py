"""Tracker and refiner ablation over training seeds: every association variant on every seed's model, mean ± std.

Each seed is one chain built by the same recipe with another SEED (``SEED=s bash scripts/build_demo_model.sh
output/seed_s`` gives ``output/seed_s/refiner/model_final.safetensors``). Tracker rows are inference-time
variants of that one model (no weight changes, so they compare association alone):

    segmenter + MinVIS | + the mask-overlap term | DVIS tracker (every PGT switch off) | + mask overlap |
    + track memory | + lifecycle | + clip association | full (mask overlap + memory + lifecycle + clip association)

PGT's progressive reference has a learned gate: it needs weights trained with it (pass them as a refiner-style
extra row). Refiner rows run offline: the chain's own refiner, and any ``--extra NAME=MODE:W0,W1,W2`` row (for
example refiners trained with RCP / SIM by ``benchmarks/ablation_jfp.py``, one per seed). A value per seed is the
mean over the sets; the table gives mean ± std over the seeds. Every (row, seed, set) keeps its results and
metrics under OUT, so an interrupted run continues where it stopped.

    python benchmarks/ablation.py --chains output/seed_{0,1,2}/refiner/model_final.safetensors \\
        --out output/ablation [--sets datasets/report_7001 ...] [--validation]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout_accuracy import DEFAULT_SETS, VALIDATION_SETS, refuse_validation_sets  # noqa: E402

PGT_OFF = ["MODEL.TRACKER.ALIGN_MASK_WEIGHT=0", "MODEL.TRACKER.ALIGN_MOTION=false", "MODEL.TRACKER.PGT.MEMORY=false",
           "MODEL.TRACKER.PGT.LIFECYCLE=false", "MODEL.TRACKER.PGT.CLIP_ASSOCIATION=false",
           "MODEL.TRACKER.PGT.PROGRESSIVE_REF=false"]
MASK = "MODEL.TRACKER.ALIGN_MASK_WEIGHT=1"
MEMORY = "MODEL.TRACKER.PGT.MEMORY=true"
TRACKER_ROWS = (  # name, association, mode, overrides (applied after the model's own config)
    ("segmenter + MinVIS", "minvis", "online", ["TEST.MINVIS_MASK_WEIGHT=0"]),
    ("segmenter + MinVIS + mask overlap", "minvis", "online", ["TEST.MINVIS_MASK_WEIGHT=1"]),
    ("DVIS tracker", "learned", "online", PGT_OFF),
    ("+ mask overlap", "learned", "online", [*PGT_OFF, MASK]),
    ("+ track memory", "learned", "online", [*PGT_OFF, MEMORY]),
    ("+ lifecycle", "learned", "online", [*PGT_OFF, MEMORY, "MODEL.TRACKER.PGT.LIFECYCLE=true"]),
    ("+ clip association", "learned", "online", [*PGT_OFF, MEMORY, "MODEL.TRACKER.PGT.CLIP_ASSOCIATION=true"]),
    ("full: mask overlap + memory + lifecycle + clip association", "learned", "online",
     [*PGT_OFF, MASK, MEMORY, "MODEL.TRACKER.PGT.LIFECYCLE=true", "MODEL.TRACKER.PGT.CLIP_ASSOCIATION=true"]),
    ("the model's own settings, online", "learned", "online", []),
    ("the model's own refiner, offline", "learned", "offline", []),
)
COLUMNS = ("AP", "IDF1", "HOTA", "DetA", "AssA", "IDSW")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def score(weights: str, association: str, mode: str, overrides: list[str], data_dir: Path, out: Path) -> dict:
    """infer + eval of one model on one set's valid split (cached in OUT/metrics.json); metrics x100."""
    cached = out / "metrics.json"
    if cached.exists():
        return json.loads(cached.read_text())
    from spvis.engine.inference import iter_jobs, load_model, run_video
    from spvis.evaluation import evaluate, write_results
    from spvis.utils.atomic_io import atomic_write_json

    model, cfg = load_model(weights, None, [f"TEST.TRACKER={association}", *overrides])
    entries = []
    for job in iter_jobs(str(data_dir / "valid.json"), str(data_dir / "valid" / "JPEGImages"), cfg):
        entries.extend(run_video(model, cfg, job, mode=mode, out_dir=None, score_thr=0.0, max_frames=None).entries)
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / "results.json", entries)
    metrics = evaluate(data_dir / "valid.json", out / "results.json")
    pooled = metrics["tracking"]["pooled"]
    row = {"AP": 100 * metrics["AP"], "IDF1": 100 * pooled["IDF1"], "HOTA": 100 * pooled["HOTA"],
           "DetA": 100 * pooled["DetA"], "AssA": 100 * pooled["AssA"], "IDSW": float(pooled["IDSW"])}
    atomic_write_json(cached, row)
    return row


def parse_extra(spec: str, seeds: int) -> tuple[str, str, list[str]]:
    """NAME=MODE:W0,W1,... -> (name, mode, one weights path per seed)."""
    name, _, rest = spec.partition("=")
    mode, _, paths = rest.partition(":")
    weights = [p for p in paths.split(",") if p]
    if not name or mode not in ("online", "offline") or len(weights) != seeds:
        raise SystemExit(f"ablation: --extra {spec!r}: expected NAME=online|offline:W0,...,W{seeds - 1} "
                         f"(one weights file per seed)")
    return name, mode, weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", nargs="+", required=True, help="one chain's weights per training seed")
    parser.add_argument("--extra", nargs="*", default=[], help="NAME=MODE:W0,W1,W2 rows with their own weights")
    parser.add_argument("--sets", nargs="+", help="dataset folders with valid.json (default: the report sets)")
    parser.add_argument("--validation", action="store_true", help="score validation sets (for choosing)")
    parser.add_argument("--rows", nargs="*", help="only the tracker rows whose names contain one of these")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="results and metrics of every (row, seed, set)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sets = args.sets or (VALIDATION_SETS if args.validation else DEFAULT_SETS)
    if not args.validation:
        refuse_validation_sets(sets, args.chains)
    rows = [(name, assoc, mode, overrides, args.chains) for name, assoc, mode, overrides in TRACKER_ROWS
            if not args.rows or any(part in name for part in args.rows)]
    for spec in args.extra:
        name, mode, weights = parse_extra(spec, len(args.chains))
        rows.append((name, "learned", mode, [], weights))
    print(f"{len(args.chains)} seeds; sets: {' '.join(sets)}")
    print(f"| row | {' | '.join(COLUMNS)} |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, assoc, mode, overrides, weights in rows:
        per_seed = []
        for seed, path in enumerate(weights):
            per_set = [score(path, assoc, mode, overrides, Path(s), Path(args.out) / slug(name) / f"seed{seed}"
                             / Path(s).name) for s in sets]
            per_seed.append({c: statistics.mean(r[c] for r in per_set) for c in COLUMNS})
        cells = []
        for column in COLUMNS:
            values = [v[column] for v in per_seed]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        print(f"| {name} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
