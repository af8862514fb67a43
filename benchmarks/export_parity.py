"""Eager vs exported graphs on the demo videos: `spvis export` then `spvis infer --backend onnx|torchscript`.

Generates the videos `spvis demo` scores (same seed, size, occlusion and frame stride), exports the model (the
built-in one by default) with `spvis export`, runs `spvis infer` on them with the torch backend and with the graphs
(`--save-masks`, so every frame's track-id map is written), scores both with `spvis eval`'s evaluator (AP as
`spvis demo` prints it) and compares: AP, result entries (video, category, score), and the id maps frame by frame.
Prints one table; the times are the whole `spvis infer` command (model load included).

    python benchmarks/export_parity.py --out /tmp/export_parity                      # ONNX
    python benchmarks/export_parity.py --out /tmp/export_parity --format torchscript
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from spvis.cli.demo_cmd import DEMO_SEED
from spvis.cli.main import main
from spvis.data.synth import generate_synthetic_dataset
from spvis.evaluation import evaluate
from spvis.viz.id_maps import read_id_map


def run(argv: list[str]) -> float:
    """Run an spvis command line; its wall time in seconds (a non-zero exit is an error)."""
    start = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise SystemExit(f"spvis {' '.join(argv)} exited with {code}")
    return time.perf_counter() - start


def compare_id_maps(a: Path, b: Path) -> tuple[int, int, float]:
    """(frames whose id maps are identical, frames, fraction of pixels that differ over all frames)."""
    same = total = 0
    differing = pixels = 0
    for path in sorted(a.rglob("*.png")):
        mine, theirs = read_id_map(path), read_id_map(b / path.relative_to(a))
        total += 1
        same += int(np.array_equal(mine, theirs))
        differing += int((mine != theirs).sum())
        pixels += mine.size
    return same, total, differing / max(pixels, 1)


def compare_entries(a: list[dict], b: list[dict]) -> tuple[bool, float]:
    """(same (video, category) entries in the same order with equal masks, largest score difference)."""
    same = len(a) == len(b) and all(x["video_id"] == y["video_id"] and x["category_id"] == y["category_id"]
                                    and x["segmentations"] == y["segmentations"] for x, y in zip(a, b))
    diff = max((abs(x["score"] - y["score"]) for x, y in zip(a, b)), default=0.0)
    return same, diff


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="work folder (videos, export, both runs)")
    parser.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    parser.add_argument("--weights", help="model weights (default: the built-in demo model)")
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    out = Path(args.out)
    written = generate_synthetic_dataset(out / "videos", videos=args.videos, frames=args.frames, size=(192, 256),
                                         categories=6, occlusion="heavy", frame_stride=2, valid_fraction=0.0,
                                         seed=DEMO_SEED)
    gt, root = written["train_json"], written["train_image_root"]
    weights = ["--weights", args.weights] if args.weights else []
    export_dir = out / f"export_{args.format}"
    export_s = run(["export", *weights, "--format", args.format, "--out", str(export_dir), "--size", "192x256",
                    "--overwrite", "--threads", str(args.threads)])
    common = ["--input", gt, "--image-root", root, "--save-masks", "--no-overlay", "--exist-ok",
              "--threads", str(args.threads)]
    runs = {"torch (eager)": (out / "eager", [*weights]),
            f"{args.format} graphs": (out / args.format, ["--backend", args.format, "--weights", str(export_dir)])}
    rows = {}
    for name, (folder, extra) in runs.items():
        seconds = run(["infer", *common, "--out", str(folder), *extra])
        entries = json.loads((folder / "results.json").read_text())
        rows[name] = (folder, seconds, evaluate(gt, folder / "results.json"), entries)
    (eager_dir, _, _, eager_entries), (graph_dir, _, _, graph_entries) = rows.values()
    same_entries, score_diff = compare_entries(eager_entries, graph_entries)
    same_frames, frames, pixel_diff = compare_id_maps(eager_dir / "masks", graph_dir / "masks")
    manifest = json.loads((export_dir / "manifest.json").read_text())
    print(f"\nexport ({args.format}): {export_s:.1f} s; max abs difference to eager at export: "
          + "; ".join(f"{g} " + ", ".join(f"{k} {v:.1e}" for k, v in d.items())
                      for g, d in manifest["check"]["max_abs_diff"].items()))
    print(f"\n| backend | AP | AP50 | HOTA | IDF1 | IDSW | entries | infer s ({frames} frames) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (_, seconds, metrics, entries) in rows.items():
        tracking = metrics["tracking"]["class_avg"]
        print(f"| {name} | {100 * metrics['AP']:.1f} | {100 * metrics['AP50']:.1f} | {100 * tracking['HOTA']:.1f} | "
              f"{100 * tracking['IDF1']:.1f} | {tracking['IDSW']:.0f} | {len(entries)} | {seconds:.1f} |")
    print(f"\nentries identical (video, category, masks): {same_entries}; largest score difference {score_diff:.2e}")
    print(f"track-id maps identical on {same_frames}/{frames} frames ({100 * pixel_diff:.4f} % of pixels differ)")


if __name__ == "__main__":
    main_cli()
