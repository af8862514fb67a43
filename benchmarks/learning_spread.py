"""Spread of the learning tests' outcomes over seeds, thread counts and CPU kernel sets (issue 21).

Each setting runs in its own process (ATEN_CPU_CAPABILITY and OMP_NUM_THREADS only act at start-up) and
does what tests/test_learning.py does: segmenter, tracker hand-off at iteration 0, tracker training.
Prints one row per run and the min / max / mean of every column, from which the tests' margins come.

    python benchmarks/learning_spread.py --seeds 0 1 2 3 4 --threads 1 2 --capabilities default avx2
    python benchmarks/learning_spread.py --plant no_head_copy   # a planted bug: the margins must catch it
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANTS = ("none", "no_head_copy", "no_guided_matching", "no_weights", "frozen_tracker")


def one_run(seed: int, plant: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_learning as L  # the tests' own recipe, so the spread is of exactly what they assert on

    extra = []
    if plant == "no_head_copy":
        import spvis.engine.checkpointing as C
        C.inherit_heads = lambda model, missing: []
    elif plant == "no_guided_matching":
        extra = ["MODEL.TRACKER.GUIDED_MATCHING=0"]
    elif plant == "frozen_tracker":
        extra = ["SOLVER.BASE_LR=0"]
    root = Path(tempfile.mkdtemp(prefix="spread"))
    videos = L.make_tiny_videos(root / "videos")
    seg = L.train_segmenter(videos, root / "segmenter", seed)
    if plant == "no_weights":  # a broken hand-off: the tracker stage starts from a random segmenter
        import spvis.engine.checkpointing as C
        C.load_initial_weights = lambda model, path, stage: []
        import spvis.engine.trainer as T
        T.ckpt.load_initial_weights = C.load_initial_weights
    row = {"seed": seed, "segmenter_AP": L.final_eval(seg)["minvis/AP"]}
    hand = L.handoff_scores(seg, videos, root / "handoff", seed)
    row["handoff_gap"] = hand["online/AP"] - hand["minvis/AP"]
    before = L.fixed_batch_loss(seg, videos, root / "loss")
    out = L.train_tracker(seg, videos, root / "tracker", seed, extra)
    after = L.fixed_batch_loss(seg, videos, root / "loss", out / "model_final.safetensors")
    final = L.final_eval(out)
    row.update({"loss_drop": 1 - after / before, "minvis_AP": final["minvis/AP"],
                "online_AP": final["online/AP"], "online_gap": final["online/AP"] - final["minvis/AP"]})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--capabilities", nargs="+", default=["default", "avx2"])
    parser.add_argument("--plant", choices=PLANTS, default="none")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            row = one_run(args.child, args.plant)
        print("ROW " + json.dumps(row))
        return
    rows = []
    cols = ["segmenter_AP", "handoff_gap", "loss_drop", "minvis_AP", "online_AP", "online_gap"]
    print(f"plant: {args.plant}")
    print("| capability | threads | seed | " + " | ".join(cols) + " |")
    print("|---|---:|---:|" + "---:|" * len(cols))
    for cap in args.capabilities:
        for threads in args.threads:
            for seed in args.seeds:
                env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                env.pop("ATEN_CPU_CAPABILITY", None)
                if cap != "default":
                    env["ATEN_CPU_CAPABILITY"] = cap
                proc = subprocess.run([sys.executable, __file__, "--child", str(seed), "--plant", args.plant],
                                      env=env, capture_output=True, text=True, cwd=ROOT)
                line = [x for x in proc.stdout.splitlines() if x.startswith("ROW ")]
                if proc.returncode or not line:
                    print(f"| {cap} | {threads} | {seed} | failed: {proc.stderr.strip().splitlines()[-1:]} |")
                    continue
                row = json.loads(line[0][4:])
                rows.append(row)
                print(f"| {cap} | {threads} | {seed} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |",
                      flush=True)
    if rows:
        for name, fn in (("min", min), ("max", max), ("mean", lambda v: sum(v) / len(v))):
            print(f"| {name} | | | " + " | ".join(f"{fn([r[c] for r in rows]):.4f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
