"""Joint Feature-Preserving ablation on the synthetic benchmark: online PGT vs offline DVIS refiner vs +RCP,
+SIM, +both, each refiner variant trained with the same budget from the same tracker weights (run on demand).

Every step uses the public commands (``spvis train / infer / eval``), so the table is what a user gets:

    python benchmarks/ablation_jfp.py --tracker-weights output/synth/tracker/model_final.safetensors \
        --data datasets/synth --iters 300 --out output/ablation_jfp

Prints one markdown table (AP, AP50, IDF1, HOTA on the valid split) and writes it to OUT/table.md.
Steps already done (weights or metrics present in OUT) are reused, so an interrupted run continues.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = (  # name, mode, refiner overrides (None = no refiner training: the tracker alone)
    ("online PGT (tracker)", "online", None),
    ("offline DVIS refiner", "offline", {"SIM": False, "RCP": False}),
    ("offline + RCP", "offline", {"SIM": False, "RCP": True}),
    ("offline + SIM", "offline", {"SIM": True, "RCP": False}),
    ("offline + RCP + SIM", "offline", {"SIM": True, "RCP": True}),
)


def spvis(*args: str) -> None:
    """Run one spvis command in a subprocess; a failure stops the ablation with its message."""
    command = [sys.executable, "-m", "spvis", *args]
    print("$ " + " ".join(command[2:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def train_refiner(args: argparse.Namespace, switches: dict, out_dir: Path) -> Path:
    """Refiner stage from the tracker weights with the given switches; returns the final weights."""
    weights = out_dir / "model_final.safetensors"
    if not weights.exists():
        steps = max(1, int(args.iters * 0.8))
        # no final weights: any run in out_dir was cut short, and this one replaces it
        spvis("train", "--overwrite", "--config", args.config, f"MODEL.WEIGHTS={args.tracker_weights}",
              f"MODEL.REFINER.SIM={switches['SIM']}", f"MODEL.REFINER.RCP={switches['RCP']}",
              f"SOLVER.MAX_ITER={args.iters}", f"SOLVER.STEPS=[{steps}]", f"SEED={args.seed}",
              f"DATASETS.TRAIN=[{args.data / 'train.json'}]", "DATASETS.TEST=[]", f"OUTPUT_DIR={out_dir}")
    return weights


def evaluate(args: argparse.Namespace, weights: Path, mode: str, out_dir: Path) -> dict:
    """Infer the valid split in ``mode`` and evaluate it; returns metrics.json."""
    metrics_path = out_dir / "metrics.json"
    if not metrics_path.exists():
        infer_dir = out_dir / "infer"
        extra = [f"--max-frames={args.max_frames}"] if args.max_frames else []
        spvis("infer", "--input", str(args.data / "valid.json"), "--image-root", str(args.data / "valid" / "JPEGImages"),
              "--weights", str(weights), "--mode", mode, "--out", str(infer_dir), "--no-overlay", "--resume",
              *extra, "MODEL.DEVICE=cpu")
        spvis("eval", "--gt", str(args.data / "valid.json"), "--pred", str(infer_dir / "results.json"),
              "--out", str(metrics_path))
    return json.loads(metrics_path.read_text())


def row(name: str, metrics: dict, seconds: float) -> str:
    pooled = metrics["tracking"]["pooled"]
    cells = [metrics["AP"], metrics["AP50"], pooled["IDF1"], pooled["HOTA"]]
    return f"| {name} | " + " | ".join(f"{100 * v:.1f}" if v >= 0 else "n/a" for v in cells) + f" | {seconds:.0f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracker-weights", type=Path, required=True,
                        help="stage-2 weights (spvis train --config configs/synth/tracker.yaml)")
    parser.add_argument("--data", type=Path, default=Path("datasets/synth"),
                        help="synthetic benchmark folder (spvis synth) with train.json / valid.json")
    parser.add_argument("--config", default="configs/synth/refiner.yaml", help="refiner-stage config")
    parser.add_argument("--iters", type=int, default=300, help="refiner iterations per variant (same for all)")
    parser.add_argument("--max-frames", type=int, default=0, help="evaluate on the first N frames (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("output/ablation_jfp"))
    args = parser.parse_args()
    for path in (args.tracker_weights, args.data / "train.json", args.data / "valid.json"):
        if not path.exists():
            parser.error(f"{path} does not exist")
    lines = ["| variant | AP | AP50 | IDF1 | HOTA | train+eval s |", "|---|---:|---:|---:|---:|---:|"]
    for name, mode, switches in VARIANTS:
        out_dir = args.out / slug(name)
        start = time.perf_counter()
        weights = args.tracker_weights if switches is None else train_refiner(args, switches, out_dir)
        metrics = evaluate(args, weights, mode, out_dir)
        lines.append(row(name, metrics, time.perf_counter() - start))
        print(lines[-1], file=sys.stderr, flush=True)
    table = "\n".join([f"Synthetic benchmark ({args.data}), refiner variants trained {args.iters} iterations "
                       f"each from {args.tracker_weights}; metrics x100 on valid.json", *lines])
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    from spvis.utils.atomic_io import atomic_write_text

    atomic_write_text(args.out / "table.md", table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
