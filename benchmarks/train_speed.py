"""Training speed of the synthetic CPU recipe: s/iter per stage for 1 vs 2 data workers and 1 vs 2 processes.

Run from the repository root:  .venv/bin/python benchmarks/train_speed.py [--iters 20] [--stages segmenter]
Generates a small `spvis synth` set in a temporary folder, runs `python -m spvis train` per setting and
reads s/iter (wall) and CPU s/iter (rank 0) from metrics.jsonl, skipping the first logging window (start-up, worker spawn). Each stage
starts from random weights (MODEL.WEIGHTS cleared), which does not change the cost of a step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_setting(stage: str, data: Path, out: Path, *, iters: int, workers: int, processes: int,
                log_period: int, overrides: list[str]) -> tuple[float, float, float]:
    """(steady s/iter, steady CPU s/iter of the rank-0 process, wall seconds) of one training run."""
    cmd = [sys.executable, "-m", "spvis", "train", "--config", str(ROOT / "configs" / "synth" / f"{stage}.yaml"),
           "--num-gpus", str(processes), "MODEL.DEVICE=cpu", "MODEL.WEIGHTS=", f"OUTPUT_DIR={out}",
           f"DATASETS.TRAIN=[{data / 'train.json'}]", "DATASETS.TEST=[]", f"SOLVER.MAX_ITER={iters}",
           f"SOLVER.STEPS=[{iters}]", f"SOLVER.LOG_PERIOD={log_period}", f"SOLVER.CHECKPOINT_PERIOD={iters * 10}",
           f"DATALOADER.NUM_WORKERS={workers}", *overrides]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    entries = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steady = [e for e in entries if "time" in e][1:]
    n = max(len(steady), 1)
    return sum(e["time"] for e in steady) / n, sum(e["cpu_time"] for e in steady) / n, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20, help="optimiser steps per run")
    parser.add_argument("--stages", nargs="+", default=["segmenter", "tracker", "refiner"])
    parser.add_argument("--settings", nargs="+", default=["1x0x0", "1x1x0", "1x0x1", "1x1x1", "2x0x0"],
                        help="PROCESSESxWORKERSxTHREADS settings (threads 0 = cores / processes)")
    parser.add_argument("--opts", nargs="*", default=[], help="extra config overrides KEY=VALUE for every run")
    args = parser.parse_args()
    log_period = max(args.iters // 4, 1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth"
        from spvis.data.synth import generate_synthetic_dataset

        generate_synthetic_dataset(data, videos=12, frames=24, size=(192, 256), occlusion="heavy", seed=0)
        print(f"{os.cpu_count()} CPU cores shared by the processes; {args.iters} iterations per run; global batch "
              "SOLVER.IMS_PER_BATCH from the config")
        print("| stage | processes | data workers | threads/process | s/iter | CPU s/iter (rank 0) | wall s |")
        print("|---|---|---|---|---|---|---|")
        for stage in args.stages:
            for setting in args.settings:
                processes, workers, threads = (int(x) for x in setting.split("x"))
                spi, cpu, wall = run_setting(stage, data, Path(tmp) / f"{stage}_{setting}", iters=args.iters,
                                             workers=workers, processes=processes, log_period=log_period,
                                             overrides=[f"SOLVER.CPU_THREADS={threads}", *args.opts])
                shown = threads or f"{(os.cpu_count() or 1) // processes} (auto)"
                print(f"| {stage} | {processes} | {workers} | {shown} | {spi:.3f} | {cpu:.3f} | {wall:.1f} |",
                      flush=True)


if __name__ == "__main__":
    main()
