#!/usr/bin/env bash
# Regenerate docs/report_screenshot.png: an `spvis report` of a small synthetic case with deliberate errors
# (an identity swap, a dropped track, a wrong class, a low score, a duplicate, a false track, shifted masks),
# rendered by headless Chromium at 1280x2000.
# Needs chromium on PATH (Debian: apt-get install -y chromium).
# Usage: bash scripts/make_report_screenshot.sh [WORK_DIR]   (default WORK_DIR: output/report_screenshot)
set -euo pipefail
cd "$(dirname "$0")/.."
SPVIS=${SPVIS:-.venv/bin/spvis}
PYTHON=${PYTHON:-.venv/bin/python}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
W=${1:-output/report_screenshot}
[ -n "$CHROMIUM" ] || { echo "no chromium on PATH (Debian: apt-get install -y chromium)" >&2; exit 1; }

rm -rf "$W"
"$SPVIS" synth --out "$W/synth" --videos 6 --frames 16 --size 128 --valid-fraction 0 --seed 3 --no-progress
"$PYTHON" - "$W/synth/train.json" "$W/results.json" <<'EOF'
"""Results derived from the GT tracks: most copied with small shifts, plus one example of each error kind."""
import json
import sys

import numpy as np
from pycocotools import mask as mask_utils

gt = json.load(open(sys.argv[1]))
rng = np.random.default_rng(0)


def shifted(segs, dx, dy):
    out = []
    for s in segs:
        if s is None:
            out.append(None)
            continue
        m = np.roll(mask_utils.decode(s), (dy, dx), axis=(0, 1))
        if not m.any():
            out.append(None)
            continue
        rle = mask_utils.encode(np.asfortranarray(m))
        rle["counts"] = rle["counts"].decode("ascii")
        out.append(rle)
    return out


by_video = {}
for a in gt["annotations"]:
    by_video.setdefault(a["video_id"], []).append(a)
cat_ids = [c["id"] for c in gt["categories"]]
results = []


def add(video, category, score, segs):
    results.append({"video_id": video, "category_id": category, "score": round(float(score), 3),
                    "segmentations": segs})


def same_category_pair(anns):
    seen = {}
    for a in anns:
        if a["category_id"] in seen:
            return seen[a["category_id"]], a
        seen[a["category_id"]] = a
    return None


swap_video = next(v for v, anns in sorted(by_video.items()) if same_category_pair(anns))
order = [swap_video] + [v for v in sorted(by_video) if v != swap_video]
for n, vid in enumerate(order):
    anns = by_video[vid]
    done = set()
    if n == 0:  # identity swap between two tracks of one category at the middle frame
        a, b = same_category_pair(anns)
        h = len(a["segmentations"]) // 2
        add(vid, a["category_id"], 0.95, a["segmentations"][:h] + b["segmentations"][h:])
        add(vid, b["category_id"], 0.9, b["segmentations"][:h] + a["segmentations"][h:])
        done = {a["id"], b["id"]}
    if n == 1:  # a dropped track and a wrong class
        wrong = next(c for c in cat_ids if c not in {x["category_id"] for x in anns})
        add(vid, wrong, 0.85, anns[1]["segmentations"])
        done = {anns[0]["id"], anns[1]["id"]}
    if n == 2:  # a low score and a duplicate
        add(vid, anns[0]["category_id"], 0.3, anns[0]["segmentations"])
        add(vid, anns[1]["category_id"], 0.8, anns[1]["segmentations"])
        add(vid, anns[1]["category_id"], 0.6, shifted(anns[1]["segmentations"], 1, 0))
        done = {anns[0]["id"], anns[1]["id"]}
    if n == 3:  # a false track: a track of another video
        other = by_video[min(by_video)][-1]
        add(vid, other["category_id"], 0.7, other["segmentations"])
    for a in anns:
        if a["id"] not in done:
            dx, dy = rng.integers(-3, 4, size=2)
            add(vid, a["category_id"], rng.uniform(0.55, 0.99), shifted(a["segmentations"], int(dx), int(dy)))
json.dump(results, open(sys.argv[2], "w"))
print(f"{len(results)} results written to {sys.argv[2]}")
EOF
"$SPVIS" report --gt "$W/synth/train.json" --pred "$W/results.json" --out "$W/report" \
    --image-root "$W/synth/train/JPEGImages"
"$CHROMIUM" --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir="$W/chromium-profile" \
    --hide-scrollbars --window-size=1280,2000 --screenshot="$PWD/docs/report_screenshot.png" \
    "file://$(realpath "$W/report/index.html")" 2>/dev/null
echo "screenshot written to docs/report_screenshot.png ($(du -k docs/report_screenshot.png | cut -f1) KB)"
