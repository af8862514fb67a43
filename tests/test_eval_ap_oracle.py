"""Cross-check video AP against an independent oracle: pycocotools' own COCOeval.

Stacking a video's T frames vertically into one (T*H, W) image turns the spatio-temporal IoU into the
ordinary mask IoU of the stacked images (sums of per-frame intersections and unions), so COCOeval
with the video area ranges and the track areas patched in computes the official video AP for
non-crowd GT (COCO uses intersection-over-detection for crowd GT, the video API does not).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from spvis.evaluation.ground_truth import load_ground_truth
from spvis.evaluation.results_io import load_results
from spvis.evaluation.synthetic import SyntheticSpec, make_case
from spvis.evaluation.vis_ap import YTVIS_STAT_NAMES, evaluate_ap


def _stacked(segs: list, height: int, width: int) -> np.ndarray:
    """(T*H, W) uint8 stack of a track's per-frame masks (zeros where null)."""
    frames = [mask_utils.decode(s) if s else np.zeros((height, width), np.uint8) for s in segs]
    return np.concatenate(frames, axis=0)


def _mean_truthy(values: list) -> float:
    kept = [v for v in values if v]
    return float(np.mean(kept)) if kept else 0.0


def coco_oracle_stats(gt: dict, results: list[dict]) -> np.ndarray:
    """The 12 official stats computed by COCOeval on frame-stacked images."""
    videos = {v["id"]: v for v in gt["videos"]}
    images = [{"id": v["id"], "height": v["height"] * v["length"], "width": v["width"]} for v in gt["videos"]]
    anns = []
    for a in gt["annotations"]:
        v = videos[a["video_id"]]
        rle = mask_utils.encode(np.asfortranarray(_stacked(a["segmentations"], v["height"], v["width"])))
        anns.append({"id": a["id"], "image_id": a["video_id"], "category_id": a["category_id"], "iscrowd": 0,
                     "segmentation": rle, "area": _mean_truthy(a["areas"])})
    coco_gt = COCO()
    coco_gt.dataset = {"images": images, "annotations": anns, "categories": gt["categories"]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    dets, det_areas = [], []
    for r in results:
        v = videos[r["video_id"]]
        stacked = _stacked(r["segmentations"], v["height"], v["width"])
        rle = mask_utils.encode(np.asfortranarray(stacked))
        dets.append({"image_id": r["video_id"], "category_id": r["category_id"], "score": r["score"],
                     "segmentation": rle})
        per_frame = stacked.reshape(v["length"], v["height"], v["width"]).sum(axis=(1, 2))
        det_areas.append(_mean_truthy(per_frame.tolist()))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(dets)
        for i, area in enumerate(det_areas):
            coco_dt.anns[i + 1]["area"] = area  # the video API's track area, not the stacked mask area
        ev = COCOeval(coco_gt, coco_dt, "segm")
        ev.params.areaRng = [[0, 1e5 ** 2], [0, 128 ** 2], [128 ** 2, 256 ** 2], [256 ** 2, 1e5 ** 2]]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def _blob_case(seed: int) -> tuple[dict, list[dict]]:
    """Small random case with irregular masks, null frames, empty masks, score ties and id-0 GT."""
    rng = np.random.default_rng(seed)
    H, W, T = 40, 48, 3
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]
    videos, anns, results = [], [], []
    aid = 0 if seed % 2 == 0 else 1  # even seeds exercise the GT-id-0 quirk
    for vid in (1, 2, 3, 5):
        videos.append({"id": vid, "height": H, "width": W, "length": T, "file_names": [f"v{vid}/{t}.jpg" for t in range(T)]})
        tracks = []
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.integers(0, H), rng.integers(0, W)
            r = rng.integers(3, 40)
            yy, xx = np.mgrid[:H, :W]
            segs, areas = [], []
            masks = []
            for t in range(T):
                if rng.random() < 0.2:
                    segs.append(None); areas.append(None); masks.append(None)
                    continue
                m = ((yy - cy - t) ** 2 + (xx - cx) ** 2 < r * r) & (rng.random((H, W)) < 0.9)
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                segs.append(rle); areas.append(int(m.sum())); masks.append(m)
            cat = int(rng.integers(1, 4))
            # the json ``areas`` field decides the area range, not the masks: scale it to reach all ranges
            scale = int(rng.choice([1, 10, 40]))
            areas = [a * scale if a is not None else None for a in areas]
            anns.append({"id": aid, "video_id": vid, "category_id": cat, "iscrowd": 0, "segmentations": segs,
                         "areas": areas})
            aid += 1
            tracks.append((cat, masks))
        for _ in range(int(rng.integers(0, 6))):
            cat, masks = tracks[int(rng.integers(len(tracks)))]
            if rng.random() < 0.3:
                cat = int(rng.integers(1, 4))
            segs = []
            for m in masks:
                if m is None or rng.random() < 0.15:
                    segs.append(None if rng.random() < 0.5 else
                                {"size": [H, W], "counts": mask_utils.encode(np.zeros((H, W, 1), np.uint8, order="F"))[0]["counts"].decode()})
                    continue
                noisy = m ^ (rng.random((H, W)) < rng.uniform(0, 0.3))
                rle = mask_utils.encode(np.asfortranarray(noisy.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                segs.append(rle)
            results.append({"video_id": vid, "category_id": cat, "score": float(rng.choice([0.9, 0.5, rng.random()])),
                            "segmentations": segs})
    return {"videos": videos, "annotations": anns, "categories": cats}, results


def _ours(gt: dict, results: list[dict]) -> np.ndarray:
    ground_truth = load_ground_truth(gt)
    out = evaluate_ap(ground_truth, load_results(results, ground_truth))
    return np.array([out.stats[k] for k in YTVIS_STAT_NAMES])


@pytest.mark.parametrize("seed", range(8))
def test_ap_equals_cocoeval_on_random_blobs(seed):
    gt, results = _blob_case(seed)
    np.testing.assert_array_equal(_ours(gt, results), coco_oracle_stats(gt, results))


def test_ap_equals_cocoeval_on_synthetic_boxes():
    spec = SyntheticSpec(num_videos=12, num_frames=3, height=600, width=800, num_classes=4,
                         gt_tracks_per_video=2.5, results_per_video=8, seed=3)
    gt, results = make_case(spec)
    ours = _ours(gt, results)
    assert ours[0] > 0.05 and (ours[3:6] > -1).sum() >= 2  # a non-trivial case over several area ranges
    np.testing.assert_array_equal(ours, coco_oracle_stats(gt, results))

