"""Synthetic YTVIS-format GT + results of realistic size, for the evaluator's benchmark and tests.

Objects are moving axis-aligned boxes. Their RLEs are written straight from the run lengths (a box
is one run pattern per column), so a 300-video, 36-frame 720p case builds in seconds instead of the
minutes that encoding 100k dense masks would take. Predictions are jittered copies of GT tracks
(sometimes with the wrong class, a dropped frame or a swapped identity) plus random false positives;
like DVIS output they carry an RLE for every frame, empty masks included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spvis.data.rle import rle_area, runs_rle


def _canonical_runs(runs: list[int]) -> list[int]:
    """Merge away zero-length interior runs (a full-height box): pycocotools' ``iou`` stops early on them."""
    out = [runs[0]]
    i = 1
    while i < len(runs):
        if runs[i] == 0 and i + 1 < len(runs):
            out[-1] += runs[i + 1]
            i += 2
        else:
            out.append(runs[i])
            i += 1
    return out


def box_rle(height: int, width: int, box: tuple[int, int, int, int] | None) -> dict:
    """Compressed RLE (str counts) of a box (x0, y0, x1, y1), exclusive ends; None or empty box = empty mask."""
    total = height * width
    if box is None:
        runs = [total]
    else:
        x0, y0, x1, y1 = box
        x0, x1 = max(0, x0), min(width, x1)
        y0, y1 = max(0, y0), min(height, y1)
        if x1 <= x0 or y1 <= y0:
            runs = [total]
        else:
            h = y1 - y0
            runs = [x0 * height + y0]
            for _ in range(x1 - x0 - 1):
                runs += [h, height - h]
            runs += [h, total - (x1 - 1) * height - y1]
            runs = _canonical_runs(runs)
    return runs_rle(runs, height, width)


@dataclass
class SyntheticSpec:
    """Size of a synthetic case."""

    num_videos: int = 300
    num_frames: int = 36
    height: int = 720
    width: int = 1280
    num_classes: int = 40
    gt_tracks_per_video: float = 2.0
    results_per_video: int = 10
    seed: int = 0


YTVIS_VALID_LIKE = SyntheticSpec()
OVIS_LIKE = SyntheticSpec(num_videos=20, num_frames=80, num_classes=5, gt_tracks_per_video=7.0,
                          results_per_video=30, seed=1)


def _track_boxes(rng: np.random.Generator, spec: SyntheticSpec) -> list[tuple[int, int, int, int] | None]:
    """Per-frame boxes of one moving object, absent (None) before it enters / after it leaves."""
    w = int(rng.integers(spec.width // 20, spec.width // 3))
    h = int(rng.integers(spec.height // 20, spec.height // 3))
    x, y = rng.uniform(0, spec.width - w), rng.uniform(0, spec.height - h)
    vx, vy = rng.normal(0, spec.width / 200), rng.normal(0, spec.height / 200)
    start = int(rng.integers(0, max(1, spec.num_frames // 4)))
    stop = int(rng.integers(max(start + 1, 3 * spec.num_frames // 4), spec.num_frames + 1))
    boxes: list[tuple[int, int, int, int] | None] = []
    for t in range(spec.num_frames):
        if start <= t < stop:
            xt, yt = x + vx * t, y + vy * t
            boxes.append((int(xt), int(yt), int(xt) + w, int(yt) + h))
        else:
            boxes.append(None)
    return boxes


def _jitter(rng: np.random.Generator, boxes: list, amount: float) -> list:
    out = []
    for b in boxes:
        if b is None:
            out.append(None)
            continue
        bw, bh = b[2] - b[0], b[3] - b[1]
        d = rng.normal(0, amount, 4) * np.array([bw, bh, bw, bh])
        out.append((int(b[0] + d[0]), int(b[1] + d[1]), int(b[2] + d[2]), int(b[3] + d[3])))
    return out


def make_case(spec: SyntheticSpec = YTVIS_VALID_LIKE) -> tuple[dict, list[dict]]:
    """(GT json dict, results list) for ``spec``."""
    rng = np.random.default_rng(spec.seed)
    H, W, T = spec.height, spec.width, spec.num_frames
    categories = [{"id": c + 1, "name": f"class{c + 1}", "supercategory": "object"} for c in range(spec.num_classes)]
    videos, annotations, results = [], [], []
    next_ann = 1
    for v in range(spec.num_videos):
        vid = v + 1
        videos.append({"id": vid, "width": W, "height": H, "length": T,
                       "file_names": [f"video{vid:04d}/{t:05d}.jpg" for t in range(T)]})
        num_tracks = max(1, int(rng.poisson(spec.gt_tracks_per_video)))
        gt_tracks = []
        for _ in range(num_tracks):
            cat = int(rng.integers(1, spec.num_classes + 1))
            boxes = _track_boxes(rng, spec)
            segs = [box_rle(H, W, b) if b is not None else None for b in boxes]
            areas = [rle_area(s) if s is not None else None for s in segs]
            annotations.append({"id": next_ann, "video_id": vid, "category_id": cat, "iscrowd": 0,
                                "height": H, "width": W, "segmentations": segs, "areas": areas,
                                "bboxes": [None if b is None else [b[0], b[1], b[2] - b[0], b[3] - b[1]]
                                           for b in boxes]})
            next_ann += 1
            gt_tracks.append((cat, boxes))
        video_results = []
        for _ in range(spec.results_per_video):
            kind = rng.random()
            if kind < 0.6:
                cat, boxes = gt_tracks[int(rng.integers(len(gt_tracks)))]
                boxes = _jitter(rng, boxes, float(rng.uniform(0.02, 0.25)))
                if rng.random() < 0.15:
                    cat = int(rng.integers(1, spec.num_classes + 1))
                if rng.random() < 0.2:  # identity switch half-way: continue on another object
                    other = gt_tracks[int(rng.integers(len(gt_tracks)))][1]
                    boxes = boxes[: T // 2] + _jitter(rng, other, 0.05)[T // 2:]
                score = float(rng.uniform(0.3, 1.0))
            else:
                cat = int(rng.integers(1, spec.num_classes + 1))
                boxes = _track_boxes(rng, spec)
                score = float(rng.uniform(0.0, 0.6))
            if rng.random() < 0.1:
                score = round(score, 1)  # ties in score
            video_results.append({"video_id": vid, "category_id": cat, "score": score,
                                  "segmentations": [box_rle(H, W, b) for b in boxes]})
        results.extend(video_results)
    gt = {"info": {"description": f"synthetic {spec}"}, "videos": videos, "categories": categories,
          "annotations": annotations}
    return gt, results
