"""Evaluation speed: spvis.evaluation vs the official algorithms as written, on synthetic cases of realistic size.

Cases (``spvis.evaluation.synthetic``): a YouTube-VIS-valid-like one (300 videos x 36 frames at 720p,
~650 GT tracks in 40 classes, 10 results per video, an RLE on every frame as DVIS writes) and an
OVIS-like one (20 videos x 80 frames, ~7 tracks per video in 5 classes, 30 results per video).

Baselines:
* AP: ``straightforward_ap`` below re-states the official ytvos evaluation loop by loop (loadRes-style
  per-frame area + box, per-pair per-frame pycocotools merge/area IoU, evaluateVid over every
  (category, area range, video) cell with the per-threshold / per-prediction / per-GT scan, the Python
  accumulate). It is our own code written from reference §1; the benchmark asserts both give
  identical numbers.
* Tracking: TrackEval 1.3.0 itself when importable (``pip install trackeval==1.3.0``; not a project
  dependency), timed on its own YouTubeVIS reader after the same score-threshold / empty-mask filtering.

Run: ``python benchmarks/eval_speed.py [--case ytvis|ovis|both] [--repeat 1] [--no-baseline]``.
Prints a table of wall-clock seconds (and CPU seconds of this process) per stage.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
from pycocotools import mask as mask_utils

from spvis.evaluation.ground_truth import load_ground_truth
from spvis.evaluation.results_io import load_results
from spvis.evaluation.synthetic import OVIS_LIKE, YTVIS_VALID_LIKE, make_case
from spvis.evaluation.tracking import evaluate_tracking
from spvis.evaluation.vis_ap import YTVIS_STAT_NAMES, evaluate_ap


class Timer:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


# ----------------------------------------------------------------------------------------------
# Straightforward official-algorithm AP (reference §1.3-§1.5, loop by loop)

def _loop_load(gt: dict, results: list[dict]) -> tuple[list, list]:
    """loadRes-style preparation: per result frame area and box; GT segmentations to RLE."""
    vids = {v["id"]: v for v in gt["videos"]}
    gts = []
    for a in gt["annotations"]:
        v = vids[a["video_id"]]
        segs = [mask_utils.frPyObjects(s, v["height"], v["width"]) if isinstance(s, dict) and isinstance(s["counts"], list)
                else s for s in a["segmentations"]]
        kept = [x for x in a["areas"] if x]
        gts.append(dict(a, segmentations=segs, avg_area=float(np.array(kept).mean()) if kept else 0,
                        ignore=bool(a.get("iscrowd", 0))))
    dts = []
    for i, r in enumerate(results):
        areas, boxes = [], []
        for s in r["segmentations"]:
            if s:
                areas.append(int(mask_utils.area(s)))
                boxes.append(mask_utils.toBbox(s))
            else:
                areas.append(None)
                boxes.append(None)
        kept = [x for x in areas if x]
        dts.append(dict(r, id=i + 1, areas=areas, bboxes=boxes, iscrowd=0,
                        avg_area=float(np.array(kept).mean()) if kept else 0))
    return gts, dts


def _loop_iou(d_seq: list, g_seq: list) -> float:
    i = u = 0.0
    for d, g in zip(d_seq, g_seq):
        if d and g:
            i += mask_utils.area(mask_utils.merge([d, g], True))
            u += mask_utils.area(mask_utils.merge([d, g], False))
        elif g:
            u += mask_utils.area(g)
        elif d:
            u += mask_utils.area(d)
    return i / u if u > 0 else 0.0


def straightforward_ap(gt: dict, results: list[dict]) -> dict[str, float]:
    """The 12 official stats by the official algorithm's loops."""
    return _loop_evaluate(gt, *_loop_load(gt, results))


def _loop_evaluate(gt: dict, gts: list, dts: list) -> dict[str, float]:
    vid_ids = sorted(v["id"] for v in gt["videos"])
    cat_ids = sorted(c["id"] for c in gt["categories"])
    thrs = np.linspace(0.5, 0.95, 10)
    rec = np.linspace(0.0, 1.0, 101)
    max_dets = [1, 10, 100]
    area_rngs = [[0, 1e5 ** 2], [0, 128 ** 2], [128 ** 2, 256 ** 2], [256 ** 2, 1e5 ** 2]]
    g_by, d_by = defaultdict(list), defaultdict(list)
    for g in gts:
        g_by[g["video_id"], g["category_id"]].append(g)
    for d in dts:
        d_by[d["video_id"], d["category_id"]].append(d)
    ious = {}
    for v in vid_ids:
        for c in cat_ids:
            g, d = g_by[v, c], d_by[v, c]
            if not g and not d:
                ious[v, c] = []
                continue
            order = np.argsort([-x["score"] for x in d], kind="mergesort")[:100]
            d = [d[i] for i in order]
            m = np.zeros((len(d), len(g)))
            for i, j in np.ndindex(m.shape):
                m[i, j] = _loop_iou(d[i]["segmentations"], g[j]["segmentations"])
            ious[v, c] = m
    evals = []
    for c in cat_ids:
        for rng in area_rngs:
            for v in vid_ids:
                g, d = g_by[v, c], d_by[v, c]
                if not g and not d:
                    evals.append(None)
                    continue
                ig = [1 if (x["ignore"] or x["avg_area"] < rng[0] or x["avg_area"] > rng[1]) else 0 for x in g]
                gind = np.argsort(ig, kind="mergesort")
                g = [g[i] for i in gind]
                ig = np.array([ig[i] for i in gind])
                dind = np.argsort([-x["score"] for x in d], kind="mergesort")
                d = [d[i] for i in dind[:100]]
                crowd = [int(x.get("iscrowd", 0)) for x in g]
                iou = ious[v, c][:, gind] if len(ious[v, c]) else ious[v, c]
                gtm, dtm = np.zeros((10, len(g))), np.zeros((10, len(d)))
                dtig = np.zeros((10, len(d)))
                if len(iou):
                    for ti, t in enumerate(thrs):
                        for di, dd in enumerate(d):
                            best, m = min(t, 1 - 1e-10), -1
                            for gi in range(len(g)):
                                if gtm[ti, gi] > 0 and not crowd[gi]:
                                    continue
                                if m > -1 and ig[m] == 0 and ig[gi] == 1:
                                    break
                                if iou[di, gi] < best:
                                    continue
                                best, m = iou[di, gi], gi
                            if m == -1:
                                continue
                            dtig[ti, di] = ig[m]
                            dtm[ti, di] = g[m]["id"]
                            gtm[ti, m] = dd["id"]
                out = np.array([x["avg_area"] < rng[0] or x["avg_area"] > rng[1] for x in d]).reshape(1, len(d))
                dtig = np.logical_or(dtig, np.logical_and(dtm == 0, np.repeat(out, 10, 0)))
                evals.append({"scores": [x["score"] for x in d], "dtm": dtm, "dtig": dtig, "gtig": ig})
    precision = -np.ones((10, 101, len(cat_ids), 4, 3))
    recall = -np.ones((10, len(cat_ids), 4, 3))
    n_v = len(vid_ids)
    for k in range(len(cat_ids)):
        for a in range(4):
            cells = [e for e in evals[(k * 4 + a) * n_v:(k * 4 + a + 1) * n_v] if e is not None]
            if not cells:
                continue
            for mi, md in enumerate(max_dets):
                scores = np.concatenate([e["scores"][:md] for e in cells])
                order = np.argsort(-scores, kind="mergesort")
                dtm = np.concatenate([e["dtm"][:, :md] for e in cells], axis=1)[:, order]
                dtig = np.concatenate([e["dtig"][:, :md] for e in cells], axis=1)[:, order]
                npig = np.count_nonzero(np.concatenate([e["gtig"] for e in cells]) == 0)
                if npig == 0:
                    continue
                tps = np.cumsum(np.logical_and(dtm, ~dtig), axis=1).astype(float)
                fps = np.cumsum(np.logical_and(~dtm.astype(bool), ~dtig), axis=1).astype(float)
                for t in range(10):
                    tp, fp = tps[t], fps[t]
                    nd = len(tp)
                    rc = tp / npig
                    pr = (tp / (fp + tp + np.spacing(1))).tolist()
                    recall[t, k, a, mi] = rc[-1] if nd else 0
                    for i in range(nd - 1, 0, -1):
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    q = np.zeros(101)
                    for ri, pi in enumerate(np.searchsorted(rc, rec, side="left")):
                        if pi >= nd:
                            break
                        q[ri] = pr[pi]
                    precision[t, :, k, a, mi] = q

    def mean(s: np.ndarray) -> float:
        s = s[s > -1]
        return float(np.mean(s)) if len(s) else -1.0

    stats = [mean(precision[:, :, :, 0, 2]), mean(precision[[0], :, :, 0, 2]), mean(precision[[5], :, :, 0, 2])]
    stats += [mean(precision[:, :, :, a, 2]) for a in (1, 2, 3)]
    stats += [mean(recall[:, :, 0, m]) for m in (0, 1, 2)] + [mean(recall[:, :, a, 2]) for a in (1, 2, 3)]
    return dict(zip(YTVIS_STAT_NAMES, stats))


# ----------------------------------------------------------------------------------------------
# TrackEval (optional)

def time_trackeval(gt: dict, results: list[dict], thr: float) -> tuple[Timer, float] | None:
    """TrackEval's YouTubeVIS HOTA+CLEAR+Identity on the filtered files; None when not installed."""
    try:
        import trackeval
    except ImportError:
        return None
    gt = json.loads(json.dumps(gt))
    vids = {v["id"]: v for v in gt["videos"]}
    for a in gt["annotations"]:  # TrackEval reads uncompressed RLE and per-annotation sizes
        v = vids[a["video_id"]]
        a["height"], a["width"] = v["height"], v["width"]
        segs = []
        for s in a["segmentations"]:
            if not s:
                segs.append(s)
                continue
            flat = mask_utils.decode({"size": s["size"], "counts": s["counts"].encode()}).flatten(order="F")
            change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
            runs = np.diff(np.r_[0, change, flat.size]).tolist()
            segs.append({"size": s["size"], "counts": ([0] + runs) if flat[0] else runs})
        a["segmentations"] = segs
    kept = [dict(r, segmentations=[None if s is None or mask_utils.area(s) == 0 else s for s in r["segmentations"]])
            for r in results if r["score"] >= thr]
    root = tempfile.mkdtemp()
    os.makedirs(f"{root}/gt/youtube_vis_b")
    os.makedirs(f"{root}/tr/youtube_vis_b/t/data")
    with open(f"{root}/gt/youtube_vis_b/gt.json", "w") as f:
        json.dump(gt, f)
    with open(f"{root}/tr/youtube_vis_b/t/data/r.json", "w") as f:
        json.dump(kept, f)
    ecfg = trackeval.Evaluator.get_default_eval_config()
    ecfg.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, TIME_PROGRESS=False,
                OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False, DISPLAY_LESS_PROGRESS=True)
    dcfg = trackeval.datasets.YouTubeVIS.get_default_dataset_config()
    dcfg.update(GT_FOLDER=f"{root}/gt/", TRACKERS_FOLDER=f"{root}/tr/", SPLIT_TO_EVAL="b", PRINT_CONFIG=False,
                OUTPUT_FOLDER=f"{root}/out")
    with Timer() as timer, contextlib.redirect_stdout(io.StringIO()):
        dataset = trackeval.datasets.YouTubeVIS(dcfg)
        metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
                   trackeval.metrics.Identity({"PRINT_CONFIG": False})]
        out, _ = trackeval.Evaluator(ecfg).evaluate([dataset], metrics)
    hota = float(np.mean(out["YouTubeVIS"]["t"]["COMBINED_SEQ"]["cls_comb_det_av"]["HOTA"]["HOTA"]))
    return timer, hota


# ----------------------------------------------------------------------------------------------

def run_case(name: str, spec, *, baseline: bool, thr: float) -> list[tuple[str, str, float, float]]:
    print(f"[{name}] generating {spec.num_videos} videos x {spec.num_frames} frames at "
          f"{spec.width}x{spec.height} ...", file=sys.stderr)
    gt_dict, results = make_case(spec)
    tmp = tempfile.mkdtemp()
    gt_path, res_path = os.path.join(tmp, "gt.json"), os.path.join(tmp, "results.json")
    with open(gt_path, "w") as f:
        json.dump(gt_dict, f)
    with open(res_path, "w") as f:
        json.dump(results, f)
    rows = []
    with Timer() as t_gt:
        gt = load_ground_truth(gt_path)
    with Timer() as t_res:
        res = load_results(res_path, gt)
    with Timer() as t_ap:
        ap = evaluate_ap(gt, res)
    with Timer() as t_tr:
        tracking = evaluate_tracking(gt, res, score_threshold=thr)
    rows += [(name, "spvis: read + validate GT", t_gt.wall, t_gt.cpu),
             (name, "spvis: read + validate results", t_res.wall, t_res.cpu),
             (name, "spvis: AP/AR", t_ap.wall, t_ap.cpu),
             (name, "spvis: tracking (HOTA+CLEAR+Identity)", t_tr.wall, t_tr.cpu)]
    total_ap = t_gt.wall + t_res.wall + t_ap.wall
    rows.append((name, "spvis: AP total (read + AP)", total_ap, t_gt.cpu + t_res.cpu + t_ap.cpu))
    print(f"[{name}] AP {ap.stats['AP']:.6f}  HOTA (pooled) {tracking['pooled']['HOTA']:.6f}", file=sys.stderr)
    if baseline:
        with Timer() as t_read:
            with open(gt_path) as f:
                gt_raw = json.load(f)
            with open(res_path) as f:
                res_raw = json.load(f)
            loaded = _loop_load(gt_raw, res_raw)
        with Timer() as t_eval:
            base = _loop_evaluate(gt_raw, *loaded)
        rows += [(name, "official as written: read + loadRes", t_read.wall, t_read.cpu),
                 (name, "official as written: AP/AR", t_eval.wall, t_eval.cpu),
                 (name, "official as written: AP total", t_read.wall + t_eval.wall, t_read.cpu + t_eval.cpu)]
        ours = {k: ap.stats[k] for k in YTVIS_STAT_NAMES}
        same = all(ours[k] == base[k] for k in YTVIS_STAT_NAMES)
        print(f"[{name}] AP stats identical to the loop baseline: {same}", file=sys.stderr)
        if not same:
            raise SystemExit(f"mismatch: ours {ours} baseline {base}")
        te = time_trackeval(gt_dict, results, thr)
        if te is None:
            print(f"[{name}] TrackEval not installed: tracking baseline skipped", file=sys.stderr)
        else:
            timer, hota = te
            rows.append((name, "TrackEval 1.3.0: tracking", timer.wall, timer.cpu))
            print(f"[{name}] TrackEval HOTA (pooled) {hota:.6f} (ours {tracking['pooled']['HOTA']:.6f})",
                  file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=("ytvis", "ovis", "both"), default="both")
    parser.add_argument("--no-baseline", action="store_true", help="time only spvis")
    parser.add_argument("--track-score-thr", type=float, default=0.5)
    args = parser.parse_args()
    cases = {"ytvis": ("YTVIS-valid-like", YTVIS_VALID_LIKE), "ovis": ("OVIS-like", OVIS_LIKE)}
    names = ["ytvis", "ovis"] if args.case == "both" else [args.case]
    rows = []
    for key in names:
        rows += run_case(*cases[key], baseline=not args.no_baseline, thr=args.track_score_thr)
    print(f"\n{'case':<18} {'stage':<42} {'wall s':>8} {'cpu s':>8}")
    for case, stage, wall, cpu in rows:
        print(f"{case:<18} {stage:<42} {wall:8.2f} {cpu:8.2f}")


if __name__ == "__main__":
    main()
