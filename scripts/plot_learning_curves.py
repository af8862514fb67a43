"""Learning curves of a training recipe as one PNG: validation AP and IDF1 against iteration, per stage.

Reads the ``metrics.jsonl`` the trainer writes in each stage's OUTPUT_DIR (the evaluation chain logs
``eval/<mode>/AP`` and ``eval/<mode>/tracking/pooled/IDF1`` at every TEST.EVAL_PERIOD) and draws, per
stage, one panel for AP and one for IDF1 with a line per mode (minvis, online, offline). Drawn with PIL
(already a dependency) so the recipe needs nothing extra.

    python scripts/plot_learning_curves.py --out docs/learning_curves.png \\
        segmenter=output/synth/segmenter tracker=output/synth/tracker refiner=output/synth/refiner
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

MODES = {"minvis": (90, 90, 90), "online": (31, 119, 180), "offline": (214, 39, 40)}
PANEL_W, PANEL_H, MARGIN = 420, 260, 48


def read_curves(output_dir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{metric: {mode: [(iteration, value x100), ...]}} from one stage's metrics.jsonl."""
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {"AP": {}, "IDF1": {}}
    path = output_dir / "metrics.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: not found (train the stage with DATASETS.TEST and TEST.EVAL_PERIOD set)")
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        for mode in MODES:
            for metric, key in (("AP", f"eval/{mode}/AP"), ("IDF1", f"eval/{mode}/tracking/pooled/IDF1")):
                if key in entry:
                    curves[metric].setdefault(mode, []).append((int(entry["iteration"]), 100 * float(entry[key])))
    return curves


def draw_panel(draw: ImageDraw.ImageDraw, x0: int, y0: int, title: str,
               series: dict[str, list[tuple[int, float]]]) -> None:
    """One chart: axes 0-100 on y, 0-max iteration on x, a polyline and legend entry per mode."""
    left, top, right, bottom = x0 + MARGIN, y0 + 28, x0 + PANEL_W - 12, y0 + PANEL_H - 30
    draw.text((x0 + MARGIN, y0 + 6), title, fill=(0, 0, 0))
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    max_iter = max([it for points in series.values() for it, _ in points] + [1])
    for value in range(0, 101, 20):
        y = bottom - (bottom - top) * value / 100
        draw.line([left - 4, y, left, y], fill=(0, 0, 0))
        draw.line([left + 1, y, right - 1, y], fill=(225, 225, 225))
        draw.text((x0 + 14, y - 6), f"{value:3d}", fill=(0, 0, 0))
    for k in range(5):
        it = round(max_iter * k / 4)
        x = left + (right - left) * it / max_iter
        draw.text((x - 10, bottom + 6), str(it), fill=(0, 0, 0))
    for row, (mode, points) in enumerate(sorted(series.items(), key=lambda kv: list(MODES).index(kv[0]))):
        colour = MODES[mode]
        xy = [(left + (right - left) * it / max_iter, bottom - (bottom - top) * min(max(v, 0), 100) / 100)
              for it, v in sorted(points)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        last = sorted(points)[-1][1] if points else float("nan")
        draw.text((right - 120, top + 6 + 14 * row), f"{mode} {last:.1f}", fill=colour)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="+", metavar="NAME=OUTPUT_DIR")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args()
    stages = [item.split("=", 1) for item in args.stages]
    image = Image.new("RGB", (2 * PANEL_W, PANEL_H * len(stages)), "white")
    draw = ImageDraw.Draw(image)
    for row, (name, folder) in enumerate(stages):
        curves = read_curves(Path(folder))
        draw_panel(draw, 0, row * PANEL_H, f"{name}: validation AP (x100) vs iteration", curves["AP"])
        draw_panel(draw, PANEL_W, row * PANEL_H, f"{name}: validation IDF1 (pooled, x100) vs iteration",
                   curves["IDF1"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
