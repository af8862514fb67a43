"""Video panoptic quality (VPQ) equal to VIPSeg's / DVIS's ``eval_vpq_vspw.py``, vectorised over windows.

Rules (reference §3), all kept: for each window length n in 1, 2, 4, 6, 8, every n consecutive frames
(stride 1, starts 0..L-n) of every video is one matching problem. GT tube area = json ``area`` summed over
the window (duplicate entries of an id summed); pred tube area = PNG pixels. A pair matches if same category,
GT not crowd and IoU > 0.5 (strict) with IoU = inter / (pred + GT - inter - pred∩VOID). An id's category and
crowd flag in a window come from its first json entry in the window. FN: unmatched non-crowd GT tubes. FP:
unmatched pred tubes unless (pred∩VOID + pred∩crowd) / pred > 0.5, where the crowd region is the last crowd
GT id of the pred's class in first-appearance order within the window. Per class over all windows:
PQ = ΣIoU / (TP + FP/2 + FN/2); classes with TP + FP + FN = 0 are skipped; VPQ_n = 100 x mean over classes
(things / stuff by ``isthing``); reported VPQ = mean of the five VPQ_n. Where no class counts the official
script divides by zero; here that value is None.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from spvis.data.vipseg import VOID_ID, Category, load_vipseg
from spvis.errors import DataFormatError
from spvis.evaluation.panoptic_io import VideoTables, load_vps_submission, read_video_tables

WINDOWS = (1, 2, 4, 6, 8)
MATCH_IOU = 0.5  # strict: IoU > 0.5
IGNORE_FRACTION = 0.5  # an unmatched pred is no FP when more than this fraction is VOID or same-class crowd
METRIC_SCALE = 100  # every metric in metrics.json is a percentage: official fraction = ours / METRIC_SCALE
SCALE_NOTE = ("VPQ, STQ, AQ and SQ are x100 (percent); the official eval_vpq_vspw.py prints VPQ x100 too, but "
              "eval_stq_vspw.py prints STQ, AQ and SQ as fractions: divide ours by 100 to compare")
_CHUNK_CELLS = 4_000_000  # windows x pairs processed at once (bounds memory on long videos)


class _Cumulative:
    """Per-video sums over frames, so any window's totals are two lookups (arrays (T + 1, ...))."""

    def __init__(self, v: VideoTables):
        T = v.num_frames
        P = len(v.pred_ids)
        self.inter = _cumsum(v.counts)  # (T+1, K) pair pixels
        parea = np.zeros((P, T), dtype=np.int64)
        np.add.at(parea, v.pair_p, v.counts.T)
        self.parea = _cumsum(parea.T)  # (T+1, P) pred pixels (PNG)
        void = np.zeros((P, T), dtype=np.int64)
        is_void = v.gt_ids[v.pair_g] == VOID_ID  # (K,)
        np.add.at(void, v.pair_p[is_void], v.counts.T[is_void])
        self.void = _cumsum(void.T)  # (T+1, P) pred pixels on GT VOID
        self.garea = _cumsum(v.gt.area)  # (T+1, G) json areas
        self.glisted = _cumsum(v.gt.listed.astype(np.int64))  # (T+1, G)
        self.plisted = _cumsum(v.pred.listed.astype(np.int64))  # (T+1, P)
        self.gnext = _next_listed(v.gt.listed)  # (T, G) first frame >= t listing the id (T if none)
        self.pnext = _next_listed(v.pred.listed)  # (T, P)


def _cumsum(x: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0] + 1,) + x.shape[1:], dtype=x.dtype)
    np.cumsum(x, axis=0, out=out[1:])
    return out


def _next_listed(listed: np.ndarray) -> np.ndarray:
    """(T, N): for each frame t, the first frame >= t where the id is listed, T when it is not listed again."""
    T = listed.shape[0]
    frame = np.where(listed, np.arange(T)[:, None], T)
    return np.minimum.accumulate(frame[::-1], axis=0)[::-1]


def _at_first(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """values (T, N) read at frames first (W, N) (clipped; callers mask windows where the id is absent)."""
    T = values.shape[0]
    return values[np.minimum(first, T - 1), np.arange(values.shape[1])[None, :]]


class VPQAccumulator:
    """Sums TP / FP / FN / IoU per class and window length over videos; ``result`` gives the VPQ numbers."""

    def __init__(self, categories: Sequence[Category], windows: Sequence[int] = WINDOWS):
        self.categories = list(categories)
        self.windows = tuple(int(n) for n in windows)
        C = len(self.categories)
        self.tp = {n: np.zeros(C, dtype=np.int64) for n in self.windows}
        self.fp = {n: np.zeros(C, dtype=np.int64) for n in self.windows}
        self.fn = {n: np.zeros(C, dtype=np.int64) for n in self.windows}
        self.iou = {n: np.zeros(C, dtype=np.float64) for n in self.windows}

    def add(self, video: VideoTables) -> None:
        """Count every window of every length of one video."""
        cum = _Cumulative(video)
        for n in self.windows:
            W = video.num_frames - n + 1
            if W <= 0:
                continue
            chunk = max(1, _CHUNK_CELLS // max(len(video.pair_g), len(video.gt_ids), len(video.pred_ids), 1))
            for w0 in range(0, W, chunk):
                self._windows(video, cum, n, np.arange(w0, min(W, w0 + chunk)))

    def _windows(self, v: VideoTables, cum: _Cumulative, n: int, starts: np.ndarray) -> None:
        """Match the windows [i, i + n) for i in ``starts`` (w,) and add their counts."""
        C = len(self.categories)
        end = starts + n
        inter = cum.inter[end] - cum.inter[starts]  # (w, K)
        parea = cum.parea[end] - cum.parea[starts]  # (w, P)
        void = cum.void[end] - cum.void[starts]  # (w, P)
        garea = cum.garea[end] - cum.garea[starts]  # (w, G)
        glisted = (cum.glisted[end] - cum.glisted[starts]) > 0  # (w, G) id in the window's json
        plisted = (cum.plisted[end] - cum.plisted[starts]) > 0  # (w, P)
        gfirst, pfirst = cum.gnext[starts], cum.pnext[starts]  # (w, G), (w, P) first listing frame
        gcat = _at_first(v.gt.cat_first, gfirst)  # (w, G) category index of the first entry in the window
        gcrowd = _at_first(v.gt.crowd_first, gfirst) & glisted  # (w, G)
        pcat = _at_first(v.pred.cat_first, pfirst)  # (w, P)
        g, p = v.pair_g, v.pair_p  # (K,)

        # matching (pairs of the window's json entries with pixels in common)
        eligible = (inter > 0) & glisted[:, g] & plisted[:, p] & ~gcrowd[:, g] & (gcat[:, g] == pcat[:, p])
        wi, ki = np.nonzero(eligible)  # (E,)
        hit = inter[wi, ki]
        union = parea[wi, p[ki]] + garea[wi, g[ki]] - hit - void[wi, p[ki]]
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = hit / union  # (E,) float64
        bad = ~(iou <= 1.0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            gid = int(v.gt_ids[g[ki[j]]])
            raise DataFormatError(v.source, f"tube IoU {iou[j]:.4g} > 1 in frames {int(starts[wi[j]])}.."
                                  f"{int(starts[wi[j]]) + n - 1}: the json 'area' of segment {gid} is smaller than "
                                  f"its PNG pixel count", entry=f"video {v.video_id}", field="area")
        tp = iou > MATCH_IOU
        wi, ki, iou = wi[tp], ki[tp], iou[tp]
        cats = gcat[wi, g[ki]]
        self.tp[n] += np.bincount(cats, minlength=C)
        self.iou[n] += np.bincount(cats, weights=iou, minlength=C)
        gmatched = np.zeros_like(glisted)
        gmatched[wi, g[ki]] = True
        pmatched = np.zeros_like(plisted)
        pmatched[wi, p[ki]] = True

        # false negatives: unmatched, listed, non-crowd GT tubes
        fn = glisted & ~gmatched & ~gcrowd
        self.fn[n] += np.bincount(gcat[fn], minlength=C)

        # false positives, minus preds mostly on VOID or on the crowd region of their class
        ignored = void.astype(np.float64)  # (w, P)
        if gcrowd.any():
            ignored += self._crowd_overlap(v, inter, gcrowd, gcat, gfirst, pcat)
        unmatched = plisted & ~pmatched
        with np.errstate(divide="ignore", invalid="ignore"):
            fp = unmatched & ~(ignored / parea > IGNORE_FRACTION)
        self.fp[n] += np.bincount(pcat[fp], minlength=C)

    @staticmethod
    def _crowd_overlap(v: VideoTables, inter: np.ndarray, gcrowd: np.ndarray, gcat: np.ndarray,
                       gfirst: np.ndarray, pcat: np.ndarray) -> np.ndarray:
        """(w, P) pixels each pred shares with the crowd region of its class (one crowd id per class)."""
        g, p = v.pair_g, v.pair_p
        # dict order of the official per-window segment table: first frame listed, then position in that frame
        order = gfirst * (int(v.gt.first_pos.max(initial=0)) + 1) + _at_first(v.gt.first_pos, gfirst)  # (w, G)
        out = np.zeros(pcat.shape, dtype=np.float64)
        for c in np.unique(gcat[gcrowd]).tolist():
            candidates = gcrowd & (gcat == c)  # (w, G)
            best = np.argmax(np.where(candidates, order, -1), axis=1)  # (w,) last crowd id of class c
            has = candidates.any(axis=1)  # (w,)
            sel = has[:, None] & (g[None, :] == best[:, None]) & (pcat[:, p] == c)  # (w, K)
            wi, ki = np.nonzero(sel)
            np.add.at(out, (wi, p[ki]), inter[wi, ki])
        return out

    def result(self) -> dict:
        """VPQ, VPQ_thing, VPQ_stuff (x100, mean over window lengths) and ``VPQ_n`` per window length."""
        isthing = np.array([c.isthing for c in self.categories], dtype=bool)
        per_n: dict[str, dict] = {}
        for n in self.windows:
            tp, fp, fn, iou = self.tp[n], self.fp[n], self.fn[n], self.iou[n]
            counted = (tp + fp + fn) > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                pq = iou / (tp + 0.5 * fp + 0.5 * fn)
                sq = np.where(tp > 0, iou / np.maximum(tp, 1), 0.0)
                rq = tp / (tp + 0.5 * fp + 0.5 * fn)
            entry: dict = {}
            for key, group in (("", np.ones_like(isthing)), ("_thing", isthing), ("_stuff", ~isthing)):
                use = counted & group
                k = int(use.sum())
                entry["VPQ" + key] = 100.0 * float(pq[use].sum()) / k if k else None
                entry["SQ" + key] = 100.0 * float(sq[use].sum()) / k if k else None
                entry["RQ" + key] = 100.0 * float(rq[use].sum()) / k if k else None
                entry["classes" + key] = k
            per_n[str(n)] = entry
        out: dict = {}
        for key in ("VPQ", "VPQ_thing", "VPQ_stuff"):
            values = [per_n[str(n)][key] for n in self.windows]
            out[key] = None if any(x is None for x in values) else sum(values) / len(values)
        out["VPQ_n"] = per_n
        return out

    def per_category(self) -> dict:
        """{category id: {name, VPQ (mean over window lengths, x100; None if never counted), tp/fp/fn}}."""
        out = {}
        for i, c in enumerate(self.categories):
            values = []
            for n in self.windows:
                tp, fp, fn = int(self.tp[n][i]), int(self.fp[n][i]), int(self.fn[n][i])
                values.append(100.0 * self.iou[n][i] / (tp + 0.5 * fp + 0.5 * fn) if tp + fp + fn else None)
            known = [x for x in values if x is not None]
            out[str(c.id)] = {"name": c.name, "isthing": c.isthing,
                              "VPQ": sum(known) / len(known) if known else None,
                              "TP": int(sum(self.tp[n][i] for n in self.windows)),
                              "FP": int(sum(self.fp[n][i] for n in self.windows)),
                              "FN": int(sum(self.fn[n][i] for n in self.windows))}
        return out


def evaluate_vps(gt_json: str | Path, gt_masks: str | Path | None, submit_dir: str | Path, *,
                 windows: Sequence[int] = WINDOWS, per_category: bool = False, progress: bool = False) -> dict:
    """VPQ and STQ of a VIPSeg submission folder (``pred.json`` + ``pan_pred/``) against the GT json and masks.

    Every GT frame is read once; metrics are x100, None where undefined (``spvis eval --task vps`` writes this).
    """
    from spvis.evaluation.stq import STQAccumulator

    start = time.perf_counter()
    gt = load_vipseg(gt_json, mask_root=gt_masks)
    if not gt.has_annotations:
        raise DataFormatError(gt.json_path, "has no annotations to score against", field="annotations")
    sub = load_vps_submission(submit_dir, gt)
    category_index = {c.id: i for i, c in enumerate(gt.categories)}
    vpq, stq = VPQAccumulator(gt.categories, windows), STQAccumulator(gt.categories)
    videos = gt.videos
    if progress:
        from tqdm import tqdm

        videos = tqdm(videos, desc="vps eval", unit="video")
    for video in videos:
        tables = read_video_tables(gt, video, sub, category_index)
        vpq.add(tables)
        stq.add(tables)
    metrics = {**vpq.result(), **{k: None if math.isnan(v) else v for k, v in stq.result().items()}}
    if per_category:
        metrics["per_category"] = vpq.per_category()
    metrics["scale"] = METRIC_SCALE
    metrics["scale_note"] = SCALE_NOTE
    metrics["info"] = {"task": "vps", "gt": str(gt.json_path), "gt_masks": str(gt.mask_root),
                       "pred": str(sub.root), "num_videos": len(gt.videos),
                       "num_frames": sum(v.length for v in gt.videos), "num_categories": gt.num_classes,
                       "windows": list(vpq.windows), "scale": "x100", "seconds": round(time.perf_counter() - start, 3)}
    return metrics


def format_vps_metrics(metrics: dict) -> str:
    """Multi-line table: VPQ (all / thing / stuff) per window length and their mean, then STQ / AQ / SQ."""
    def cell(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    lines = ["Video panoptic quality (VIPSeg VPQ, x100)", f"{'window':>8}  {'VPQ':>7}  {'thing':>7}  {'stuff':>7}"]
    for n, entry in metrics["VPQ_n"].items():
        lines.append(f"{n:>8}  {cell(entry['VPQ']):>7}  {cell(entry['VPQ_thing']):>7}  {cell(entry['VPQ_stuff']):>7}")
    lines.append(f"{'mean':>8}  {cell(metrics['VPQ']):>7}  {cell(metrics['VPQ_thing']):>7}  "
                 f"{cell(metrics['VPQ_stuff']):>7}")
    lines += ["", "Segmentation and tracking quality (x100; the official eval_stq_vspw.py prints fractions)",
              f"STQ {cell(metrics['STQ'])}  AQ {cell(metrics['AQ'])}  SQ {cell(metrics['SQ'])}"]
    return "\n".join(lines)
