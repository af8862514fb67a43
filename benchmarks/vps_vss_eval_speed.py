"""VPS / VSS evaluation speed: spvis.evaluation (VPQ, STQ, mIoU, VC) vs the official algorithms as written.

Case: ``spvis synth --task vps|vss`` videos at the real resolutions (VIPSeg 720p, VSPW 480p), scored against
predictions derived from the ground truth (ids renumbered, a shift, an id switch, dropped and mislabelled
segments, noise boxes, VOID), so matching, FP / FN and crowd-free ignore rules all do work.

Baselines, written here from reference §3-5, loop by loop as the official scripts run (single process):
* VPQ: for each window length n in 1, 2, 4, 6, 8 and each window, every frame's GT and predicted PNG is opened
  and decoded again, per-frame json segment tables copied and merged, ``np.unique`` over the stacked window,
  then Python loops over pairs / GT / predictions.
* STQ: per frame, label maps painted segment by segment (``pan == id`` per segment), then the STQuality update
  (``np.unique`` of ids, dict accumulation, ``np.add.at`` confusion) and the dict-loop AQ.
* mIoU: per frame one bincount confusion; VC: every window compares its frames to the first one, n - 1
  full-frame comparisons per window, for n = 8 and 16 (the list kept for VC16_dvis).
The benchmark asserts both sides give the same numbers (<= 1e-9) before printing the table.

Run: ``python benchmarks/vps_vss_eval_speed.py [--videos 2] [--frames 24] [--task vps|vss|both]`` (about 3 min
on 2 cores, most of it the loop VPQ: it decodes every 720p frame 21 times).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from spvis.data.png_io import read_id_png, read_label_png, write_id_png, write_label_png
from spvis.data.synth_panoptic import generate_panoptic_dataset
from spvis.data.vipseg import load_vipseg
from spvis.data.vspw import load_vspw, to_train_ids
from spvis.evaluation.vps import evaluate_vps
from spvis.evaluation.vss import evaluate_vss


# ----------------------------------------------------------------------------------------------------------
# predictions derived from the ground truth


def perturbed_vps_submission(gt_json: Path, out: Path, seed: int) -> Path:
    """pred.json + pan_pred/ : renumbered ids, a 3-px shift, an id switch, a dropped / a mislabelled segment."""
    gt = load_vipseg(gt_json)
    rng = np.random.default_rng(seed)
    things = [c.id for c in gt.categories if c.isthing]
    annotations = []
    for video in gt.videos:
        ids = sorted({s.id for f in video.frames for s in f.segments})
        remap = {i: 10 * i + 7 for i in ids}
        dropped = int(rng.choice(ids))
        switched = int(rng.choice(ids))
        category = {s.id: s.category_id for f in video.frames for s in f.segments}
        relabel = {int(rng.choice(ids)): int(rng.choice(things))}
        frames = []
        for t, frame in enumerate(video.frames):
            gt_ids = read_id_png(gt.mask_path(frame)).astype(np.int64)  # (H, W)
            pred = np.zeros_like(gt_ids)
            for i in ids:
                pred[gt_ids == i] = remap[i] + (1 if i == switched and t >= video.length // 2 else 0)
            pred[gt_ids == dropped] = 0
            pred = np.roll(pred, 3 * (t % 3), axis=1)
            h, w = pred.shape
            y, x = int(rng.integers(0, h - 40)), int(rng.integers(0, w - 60))
            pred[y:y + 40, x:x + 60] = int(rng.choice([0, remap[ids[0]]]))
            present = sorted(set(np.unique(pred).tolist()) - {0})
            segs = []
            for p in present:
                base = (p - 7) // 10 if (p - 7) % 10 == 0 else (p - 8) // 10
                segs.append({"id": p, "category_id": relabel.get(base, category[base])})
            write_id_png(out / "pan_pred" / video.video_id / f"{frame.name}.png", pred)
            frames.append({"image_id": frame.name, "file_name": f"{frame.name}.png", "segments_info": segs})
        annotations.append({"video_id": video.video_id, "annotations": frames})
    (out / "pred.json").write_text(json.dumps({"annotations": annotations}))
    return out


def perturbed_vss_predictions(root: Path, split: str, out: Path, seed: int) -> Path:
    """<video>/<frame>.png : GT class ids with flicker boxes, a shift and a swapped class."""
    ds = load_vspw(root, split)
    rng = np.random.default_rng(seed)
    for video in ds.videos:
        for t, frame in enumerate(video.frames):
            pred = to_train_ids(read_label_png(ds.mask_path(frame)))
            pred[pred == 255] = 0
            pred = np.roll(pred, t % 2, axis=0)
            h, w = pred.shape
            y, x = int(rng.integers(0, h - 30)), int(rng.integers(0, w - 30))
            pred[y:y + 30, x:x + 30] = int(rng.integers(0, 8))
            pred[pred == 2] = 3 if t % 5 == 0 else 2
            write_label_png(out / video.name / f"{frame.name}.png", pred)
    return out


# ----------------------------------------------------------------------------------------------------------
# official algorithms, loop by loop (reference §3-5)


def _png_ids(path: Path) -> np.ndarray:
    rgb = np.uint32(np.array(Image.open(path)))
    return rgb[:, :, 0] + 256 * rgb[:, :, 1] + 256 * 256 * rgb[:, :, 2]


def loop_vpq(gt_json: Path, gt_dir: Path, submit: Path) -> dict:
    gt = json.loads(gt_json.read_text())
    pred = json.loads((submit / "pred.json").read_text())
    categories = {c["id"]: c for c in gt["categories"]}
    pred_by = {a["video_id"]: a["annotations"] for a in pred["annotations"]}
    gt_by = {a["video_id"]: a["annotations"] for a in gt["annotations"]}
    videos = []
    for v in gt["videos"]:
        vid = v["video_id"]
        names = [Path(im["file_name"]).stem + ".png" for im in v["images"]]
        videos.append(list(zip(gt_by[vid], pred_by[vid], [gt_dir / vid / n for n in names],
                               [submit / "pan_pred" / vid / n for n in names])))
    per_n = {}
    for n in (1, 2, 4, 6, 8):
        stat = {c: [0.0, 0, 0, 0] for c in categories}  # iou, tp, fp, fn
        for frames in copy.deepcopy(videos):
            for i in range(len(frames) - n + 1):
                gts, preds, gt_tables, pred_tables = [], [], [], []
                for gt_json_f, pred_json_f, gt_png, pred_png in frames[i:i + n]:
                    g, p = _png_ids(gt_png), _png_ids(pred_png)
                    gt_segs = {}
                    for el in gt_json_f["segments_info"]:
                        if el["id"] in gt_segs:
                            gt_segs[el["id"]]["area"] += el["area"]
                        else:
                            gt_segs[el["id"]] = copy.deepcopy(el)
                    pred_segs = {el["id"]: copy.deepcopy(el) for el in pred_json_f["segments_info"]}
                    labels, counts = np.unique(p, return_counts=True)
                    for label, count in zip(labels, counts):
                        if label == 0:
                            continue
                        pred_segs[label]["area"] = count
                    gts.append(g)
                    preds.append(p)
                    gt_tables.append(gt_segs)
                    pred_tables.append(pred_segs)
                vid_gt, vid_pred = {}, {}
                for gs, ps in zip(gt_tables, pred_tables):
                    for k, el in gs.items():
                        if k in vid_gt:
                            vid_gt[k]["area"] += el["area"]
                        else:
                            vid_gt[k] = el
                    for k, el in ps.items():
                        if k in vid_pred:
                            vid_pred[k]["area"] += el["area"]
                        else:
                            vid_pred[k] = el
                joint = np.stack(gts).astype(np.uint64) * 256 ** 3 + np.stack(preds).astype(np.uint64)
                labels, counts = np.unique(joint, return_counts=True)
                pairs = {(int(lab // 256 ** 3), int(lab % 256 ** 3)): int(c) for lab, c in zip(labels, counts)}
                gt_matched, pred_matched = set(), set()
                for (g, p), inter in pairs.items():
                    if g not in vid_gt or p not in vid_pred or vid_gt[g]["iscrowd"] == 1:
                        continue
                    if vid_gt[g]["category_id"] != vid_pred[p]["category_id"]:
                        continue
                    iou = inter / (vid_pred[p]["area"] + vid_gt[g]["area"] - inter - pairs.get((0, p), 0))
                    if iou > 0.5:
                        stat[vid_gt[g]["category_id"]][0] += iou
                        stat[vid_gt[g]["category_id"]][1] += 1
                        gt_matched.add(g)
                        pred_matched.add(p)
                crowd = {}
                for g, info in vid_gt.items():
                    if g in gt_matched:
                        continue
                    if info["iscrowd"] == 1:
                        crowd[info["category_id"]] = g
                        continue
                    stat[info["category_id"]][3] += 1
                for p, info in vid_pred.items():
                    if p in pred_matched:
                        continue
                    ignored = pairs.get((0, p), 0)
                    if info["category_id"] in crowd:
                        ignored += pairs.get((crowd[info["category_id"]], p), 0)
                    if ignored / info["area"] > 0.5:
                        continue
                    stat[info["category_id"]][2] += 1
        entry = {}
        for key, want in (("VPQ", None), ("VPQ_thing", True), ("VPQ_stuff", False)):
            pq, k = 0.0, 0
            for c, info in categories.items():
                if want is not None and (info["isthing"] == 1) != want:
                    continue
                iou, tp, fp, fn = stat[c]
                if tp + fp + fn == 0:
                    continue
                k += 1
                pq += iou / (tp + 0.5 * fp + 0.5 * fn)
            entry[key] = 100 * pq / k
        per_n[n] = entry
    return {key: sum(per_n[n][key] for n in per_n) / 5 for key in ("VPQ", "VPQ_thing", "VPQ_stuff")}


def loop_stq(gt_json: Path, gt_dir: Path, submit: Path, num_classes: int = 124) -> dict:
    gt = json.loads(gt_json.read_text())
    pred = json.loads((submit / "pred.json").read_text())
    things = [c["id"] for c in gt["categories"] if c["isthing"]]
    pred_by = {a["video_id"]: a["annotations"] for a in pred["annotations"]}
    gt_by = {a["video_id"]: a["annotations"] for a in gt["annotations"]}
    size = num_classes + 1
    confusions, gt_sizes, pr_sizes, inters = [], [], [], []
    for v in gt["videos"]:
        vid = v["video_id"]
        numbers = []
        for frames in (gt_by[vid], pred_by[vid]):
            order: list[int] = []
            for f in frames:
                for el in f["segments_info"]:
                    if el["id"] not in order:
                        order.append(el["id"])
            numbers.append({i: k for k, i in enumerate(order)})
        conf = np.zeros((size, size), dtype=np.int64)
        g_sz, p_sz, inter = {}, {}, {}
        for im, gf, pf in zip(v["images"], gt_by[vid], pred_by[vid]):
            name = Path(im["file_name"]).stem + ".png"
            labels = []
            for pan, segs, number in ((_png_ids(gt_dir / vid / name), gf, numbers[0]),
                                      (_png_ids(submit / "pan_pred" / vid / name), pf, numbers[1])):
                semantic = np.ones_like(pan) * 255
                instance = np.ones_like(pan) * 255
                for el in segs["segments_info"]:
                    semantic[pan == el["id"]] = el["category_id"]
                    instance[pan == el["id"]] = number[el["id"]]
                labels.append(((semantic << 16) + instance).astype(np.int32).astype(np.int64))
            y_true, y_pred = labels
            sem_t, sem_p = y_true >> 16, y_pred >> 16
            sem_t = np.where(sem_t != 255, sem_t, num_classes)
            sem_p = np.where(sem_p != 255, sem_p, num_classes)
            np.add.at(conf, (sem_t.ravel(), sem_p.ravel()), 1)
            inst_t = y_true & 0xFFFF
            label_mask = np.zeros(sem_t.shape, dtype=bool)
            pred_mask = np.zeros(sem_t.shape, dtype=bool)
            for c in things:
                label_mask |= sem_t == c
                pred_mask |= sem_p == c
            crowd = (inst_t == 0) & label_mask
            label_mask &= ~crowd
            pred_mask &= ~crowd
            for store, values in ((g_sz, y_true[label_mask]), (p_sz, y_pred[pred_mask]),
                                  (inter, y_true[label_mask & pred_mask] * 2 ** 24 + y_pred[label_mask & pred_mask])):
                for k, c in zip(*np.unique(values, return_counts=True)):
                    store[int(k)] = store.get(int(k), 0) + int(c)
        confusions.append(conf)
        gt_sizes.append(g_sz)
        pr_sizes.append(p_sz)
        inters.append(inter)
    aq_sum, tubes = 0.0, 0
    for g_sz, p_sz, inter in zip(gt_sizes, pr_sizes, inters):
        outer = 0.0
        for g, gs in g_sz.items():
            inner = 0.0
            for p, ps in p_sz.items():
                tpa = inter.get(g * 2 ** 24 + p)
                if tpa is not None:
                    inner += tpa * (tpa / (tpa + (ps - tpa) + (gs - tpa)))
            outer += 1.0 / gs * inner
        aq_sum += outer
        tubes += len(g_sz)
    total = np.zeros((size, size), dtype=np.int64)
    for conf in confusions:
        conf[num_classes, :] = 0
        total += conf
    diag = total.diagonal()
    unions = diag + (total.sum(0) - diag) + (total.sum(1) - diag)
    sq = float(np.sum(diag / np.maximum(unions, 1e-15)) / np.count_nonzero(unions))
    aq = aq_sum / max(tubes, 1e-15)
    return {"STQ": 100 * math.sqrt(aq * sq), "AQ": 100 * aq, "SQ": 100 * sq}


def loop_vss(root: Path, split: str, pred_dir: Path, num_classes: int = 124) -> dict:
    videos = [line.strip() for line in (root / f"{split}.txt").read_text().splitlines() if line.strip()]
    conf = np.zeros((num_classes, num_classes))
    for video in videos:
        for name in os.listdir(root / "data" / video / "mask"):
            g = np.array(Image.open(root / "data" / video / "mask" / name))
            p = np.array(Image.open(pred_dir / video / name))
            g[g == 0] = 255
            g = g - 1
            mask = (g >= 0) & (g < num_classes)
            conf += np.bincount(num_classes * g[mask].astype(int) + p[mask],
                                minlength=num_classes ** 2).reshape(num_classes, num_classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.diag(conf) / (conf.sum(1) + conf.sum(0) - np.diag(conf))
        valid = conf.sum(1) > 0
        out = {"mIoU": 100 * float(np.nansum(iou * valid) / valid.sum())}
        total = []
        for n in (8, 16):
            accs = []
            for video in videos:
                names = sorted(os.listdir(root / "data" / video / "mask"))
                if len(names) <= n:
                    continue
                gts = [np.array(Image.open(root / "data" / video / "mask" / x)) for x in names]
                preds = [np.array(Image.open(pred_dir / video / x)) for x in names]
                h, w = gts[0].shape
                for i in range(len(gts) - n):
                    g_common = np.ones((h, w))
                    p_common = np.ones((h, w))
                    for j in range(1, n):
                        g_common = np.logical_and(g_common, gts[i] == gts[i + j])
                        p_common = np.logical_and(p_common, preds[i] == preds[i + j])
                    accs.append((p_common * g_common).sum() / g_common.sum())
            total += accs
            out[f"VC{n}"] = 100 * float(np.nanmean(accs))
        out["VC16_dvis"] = 100 * float(np.nanmean(total))
    return out


# ----------------------------------------------------------------------------------------------------------


def _timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def _check(ours: dict, theirs: dict) -> float:
    worst = 0.0
    for key, value in theirs.items():
        diff = abs(ours[key] - value)
        if diff > 1e-9:
            sys.exit(f"MISMATCH {key}: spvis {ours[key]!r} vs loop {value!r}")
        worst = max(worst, diff)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("vps", "vss", "both"), default="both")
    parser.add_argument("--videos", type=int, default=2, help="videos per case")
    parser.add_argument("--frames", type=int, default=24, help="VIPSeg frames per video (VIPSeg averages 24; "
                                                              "VSPW videos get three times as many, as VSPW averages 71)")
    parser.add_argument("--vps-size", default="720x1280", help="VIPSeg frame size (the 720p release)")
    parser.add_argument("--vss-size", default="480x853", help="VSPW frame size (the 480p release)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.task in ("vps", "both"):
            start = time.perf_counter()
            generate_panoptic_dataset(tmp / "d", task="vps", videos=args.videos + 1, frames=args.frames,
                                      size=args.vps_size, categories=6, valid_fraction=args.videos / (args.videos + 1),
                                      seed=args.seed)
            root = tmp / "d" / "VIPSeg" / "VIPSeg_720P"
            gt_json, masks = root / "panoptic_gt_VIPSeg_val.json", root / "panomasksRGB"
            sub = perturbed_vps_submission(gt_json, tmp / "sub", args.seed)
            print(f"VPS case: {args.videos} videos x {args.frames} frames at {args.vps_size} "
                  f"(made in {time.perf_counter() - start:.0f} s)", flush=True)
            ours, t_ours = _timed(evaluate_vps, gt_json, masks, sub)
            vpq, t_vpq = _timed(loop_vpq, gt_json, masks, sub)
            stq, t_stq = _timed(loop_stq, gt_json, masks, sub)
            diff = max(_check(ours, vpq), _check(ours, stq))
            rows.append(("VPQ + STQ (VIPSeg)", t_vpq + t_stq, t_ours, diff,
                         f"VPQ {ours['VPQ']:.2f}  STQ {ours['STQ']:.2f}"))
            print(f"  loop VPQ {t_vpq:.1f} s, loop STQ {t_stq:.1f} s", flush=True)
        if args.task in ("vss", "both"):
            start = time.perf_counter()
            generate_panoptic_dataset(tmp / "d", task="vss", videos=args.videos + 1, frames=3 * args.frames,
                                      size=args.vss_size, categories=6, valid_fraction=args.videos / (args.videos + 1),
                                      seed=args.seed)
            root = tmp / "d" / "VSPW_480p"
            pred = perturbed_vss_predictions(root, "val", tmp / "vss_pred", args.seed)
            print(f"VSS case: {args.videos} videos x {3 * args.frames} frames at {args.vss_size} "
                  f"(made in {time.perf_counter() - start:.0f} s)", flush=True)
            ours, t_ours = _timed(evaluate_vss, root, "val", pred)
            theirs, t_loop = _timed(loop_vss, root, "val", pred)
            rows.append(("mIoU + VC8/16 (VSPW)", t_loop, t_ours, _check(ours, theirs),
                         f"mIoU {ours['mIoU']:.2f}  VC8 {ours['VC8']:.2f}  VC16 {ours['VC16']:.2f}"))
    print(f"\n{'metric':<22} {'official loops (s)':>18} {'spvis (s)':>10} {'speed-up':>9} {'max |diff|':>11}  values")
    for name, slow, fast, diff, values in rows:
        print(f"{name:<22} {slow:>18.2f} {fast:>10.2f} {slow / fast:>8.1f}x {diff:>11.1e}  {values}")


if __name__ == "__main__":
    main()
