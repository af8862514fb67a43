"""YouTube-VIS / OVIS video AP and AR, equal to the official ``ytvoseval`` / ``oviseval`` numbers.

Every rule of reference §1.4-§1.8 is kept: per (video, category) greedy matching at 10 IoU thresholds
(stable score order, non-ignored GT first, best IoU with ties to the later GT, crowd GT reusable),
GT ignored when crowd or outside the bucket's area / occlusion range, GT id 0 never counting as a
match, unmatched out-of-range predictions ignored, maxDets 1/10/100, 101 recall points, precision
with the ``np.spacing(1)`` eps, -1 for categories without non-ignored GT.

Faster than the official code because (a) IoUs come from one pycocotools call per frame
(``video_iou``) instead of four per pair and frame, (b) only (video, category) cells holding GT or predictions are visited, (c) matching
is vectorised over the IoU thresholds and reused between buckets with the same GT-ignore pattern,
(d) accumulation uses numpy cumulative maxima instead of Python loops. The summary means are taken
over arrays laid out as the official ones, so the floating-point sums are identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from spvis.evaluation.ground_truth import GroundTruth, GtTrack
from spvis.evaluation.results_io import ResultTrack
from spvis.evaluation.video_iou import video_ious

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, 101, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 128.0 ** 2), "medium": (128.0 ** 2, 256.0 ** 2),
               "large": (256.0 ** 2, 1e5 ** 2)}
OCCLUSION_RANGES = {"all": (0.0, 1.0), "light": (0.0, 0.25), "medium": (0.25, 0.5), "heavy": (0.5, 1.0)}
YTVIS_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
OVIS_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AP_light", "AP_medium", "AP_heavy",
                   "AR1", "AR10", "AR100", "ARs", "ARm", "ARl", "AR_light", "AR_medium", "AR_heavy")


@dataclass(frozen=True)
class Bucket:
    """A GT filter: tracks outside the area range or occlusion range are ignored."""

    name: str
    area: tuple[float, float]
    occlusion: tuple[float, float] = (0.0, 1.0)


def buckets_for(with_occlusion: bool) -> list[Bucket]:
    """The (area, occlusion) cells the summary reads: 4 area ranges, plus 3 occlusion ranges for OVIS."""
    out = [Bucket(name, rng) for name, rng in AREA_RANGES.items()]
    if with_occlusion:
        out += [Bucket(f"occ_{name}", AREA_RANGES["all"], rng) for name, rng in OCCLUSION_RANGES.items()
                if name != "all"]
    return out


@dataclass
class CellMatch:
    """Matching outcome of one (video, category, bucket), predictions in score order (top 100)."""

    scores: np.ndarray  # (D,) float64
    true_pos: np.ndarray  # (T, D) bool: matched to a GT with non-zero id and not ignored
    false_pos: np.ndarray  # (T, D) bool: not (such a) match and not ignored
    num_gt_kept: int  # GT not ignored in this bucket


def greedy_match(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Official greedy matching at every IoU threshold at once.

    ious (D, G) with predictions in score order and GT in the official order (non-ignored first);
    returns matched GT column (T, D) int64 (-1 = unmatched) and the GT-ignore flag of that match (T, D).
    """
    num_thr = len(IOU_THRESHOLDS)
    num_dt, num_gt = ious.shape
    matched = np.full((num_thr, num_dt), -1, dtype=np.int64)
    match_ignored = np.zeros((num_thr, num_dt), dtype=bool)
    if num_dt == 0 or num_gt == 0:
        return matched, match_ignored
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[:, None]  # (T, 1)
    taken = np.zeros((num_thr, num_gt), dtype=bool)
    rows = np.arange(num_thr)
    for d in range(num_dt):
        row = ious[d]  # (G,)
        candidate = (~taken | gt_crowd) & (row >= thresholds)  # (T, G)
        if not candidate.any():
            continue
        chosen = np.full(num_thr, -1, dtype=np.int64)
        # non-ignored GT first; ignored GT only when no non-ignored GT qualifies (the official "break")
        for group in (~gt_ignore, gt_ignore):
            open_rows = chosen < 0
            group_candidates = candidate & group & open_rows[:, None]
            if not group_candidates.any():
                continue
            values = np.where(group_candidates, row, -np.inf)  # (T, G)
            best_rev = np.argmax(values[:, ::-1], axis=1)  # ties -> the later GT, as the official scan
            best = num_gt - 1 - best_rev
            found = np.isfinite(values[rows, best])
            chosen = np.where(found & open_rows, best, chosen)
        hit = chosen >= 0
        if hit.any():
            matched[hit, d] = chosen[hit]
            match_ignored[hit, d] = gt_ignore[chosen[hit]]
            taken[rows[hit], chosen[hit]] = True
    return matched, match_ignored


@dataclass
class _Cell:
    """GT and top-100 predictions of one (video, category), with their IoUs."""

    video_id: int
    gts: list[GtTrack]
    dts: list[ResultTrack]  # score order (stable), at most max(MAX_DETS)
    ious: np.ndarray  # (D, G), GT in file order
    dt_area: np.ndarray  # (D,)
    gt_area: np.ndarray  # (G,)
    gt_occ: np.ndarray  # (G,)
    gt_crowd: np.ndarray  # (G,) bool
    gt_id_nonzero: np.ndarray  # (G,) bool
    cache: dict = field(default_factory=dict)

    def match(self, bucket: Bucket) -> CellMatch:
        """Official evaluateVid for one bucket (reusing the matching of an identical GT-ignore pattern)."""
        lo, hi = bucket.area
        olo, ohi = bucket.occlusion
        gt_ignore = self.gt_crowd | (self.gt_area < lo) | (self.gt_area > hi) | (self.gt_occ < olo) | \
            (self.gt_occ > ohi)
        key = gt_ignore.tobytes()
        if key not in self.cache:
            order = np.argsort(gt_ignore, kind="mergesort")  # non-ignored GT first, stable
            matched, match_ignored = greedy_match(self.ious[:, order], gt_ignore[order], self.gt_crowd[order])
            nonzero = np.zeros_like(matched, dtype=bool)
            hit = matched >= 0
            nonzero[hit] = self.gt_id_nonzero[order][matched[hit]]
            self.cache[key] = (nonzero, match_ignored)
        nonzero, match_ignored = self.cache[key]
        out_of_range = (self.dt_area < lo) | (self.dt_area > hi)  # (D,)
        ignored = match_ignored | (~nonzero & out_of_range[None, :])
        return CellMatch(scores=np.array([d.score for d in self.dts], dtype=np.float64),
                         true_pos=nonzero & ~ignored, false_pos=~nonzero & ~ignored,
                         num_gt_kept=int((~gt_ignore).sum()))


PairIous = Callable[[list[ResultTrack], list[GtTrack]], np.ndarray]  # (D, G) video IoUs of predictions vs GT


def track_ious(dts: list[ResultTrack], gts: list[GtTrack]) -> np.ndarray:
    """Video IoUs (D, G) of predictions against GT tracks of one video (``video_iou.video_ious``)."""
    return video_ious([d.rles for d in dts], np.stack([d.frame_areas for d in dts]),
                      [g.rles for g in gts], np.stack([g.frame_areas for g in gts]))


def _build_cells(gt: GroundTruth, results: list[ResultTrack], pair_ious: PairIous) -> dict[int, list[_Cell]]:
    """Cells with GT or predictions, grouped by category id, each list in ascending video id."""
    max_det = MAX_DETS[-1]
    dts_by_cell: dict[tuple[int, int], list[ResultTrack]] = {}
    for r in results:
        dts_by_cell.setdefault((r.video_id, r.category_id), []).append(r)
    gts_by_cell: dict[tuple[int, int], list[GtTrack]] = {}
    for vid, tracks in gt.tracks_by_video.items():
        for g in tracks:
            gts_by_cell.setdefault((vid, g.category_id), []).append(g)
    cells: dict[int, list[_Cell]] = {c: [] for c in gt.category_ids}
    for vid in sorted(gt.video_index):
        for cid in gt.category_ids:
            gts = gts_by_cell.get((vid, cid), [])
            dts = dts_by_cell.get((vid, cid), [])
            if not gts and not dts:
                continue
            order = np.argsort([-d.score for d in dts], kind="mergesort")[:max_det]
            dts = [dts[i] for i in order]
            ious = pair_ious(dts, gts) if dts and gts else np.zeros((len(dts), len(gts)))
            cells[cid].append(_Cell(
                video_id=vid, gts=gts, dts=dts, ious=ious,
                dt_area=np.array([d.avg_area for d in dts], dtype=np.float64),
                gt_area=np.array([g.avg_area for g in gts], dtype=np.float64),
                gt_occ=np.array([g.occlusion_score if g.occlusion_score is not None else 0.0 for g in gts]),
                gt_crowd=np.array([g.iscrowd for g in gts], dtype=bool),
                gt_id_nonzero=np.array([g.id != 0 for g in gts], dtype=bool)))
    return cells


def _precision_recall(matches: list[CellMatch], max_det: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Official accumulate for one (category, bucket, maxDet): precision (T, R) and recall (T,), or None (= -1)."""
    num_gt = sum(m.num_gt_kept for m in matches)
    if num_gt == 0:
        return None
    scores = np.concatenate([m.scores[:max_det] for m in matches])
    order = np.argsort(-scores, kind="mergesort")
    tps = np.concatenate([m.true_pos[:, :max_det] for m in matches], axis=1)[:, order]  # (T, N)
    fps = np.concatenate([m.false_pos[:, :max_det] for m in matches], axis=1)[:, order]
    tp_sum = np.cumsum(tps, axis=1).astype(np.float64)
    fp_sum = np.cumsum(fps, axis=1).astype(np.float64)
    num_thr, num_det = tp_sum.shape
    precision = np.zeros((num_thr, len(RECALL_THRESHOLDS)))
    recall = np.zeros(num_thr)
    if num_det == 0:
        return precision, recall
    rc = tp_sum / num_gt
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope, monotone from the right
    recall[:] = rc[:, -1]
    for t in range(num_thr):
        inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
        valid = inds < num_det
        precision[t, valid] = pr[t, inds[valid]]
    return precision, recall


@dataclass
class APResult:
    """Accumulated arrays (official layout without the bucket axis) and the summary."""

    category_ids: list[int]
    buckets: list[Bucket]
    precision: np.ndarray  # (T, R, K, B, M), -1 = undefined
    recall: np.ndarray  # (T, K, B, M)
    stats: dict[str, float]
    per_category_ap: dict[int, float]  # -1 where undefined


def _mean_defined(values: np.ndarray) -> float:
    """The official summary mean: over entries > -1, or -1 when there are none."""
    kept = values[values > -1]
    return float(np.mean(kept)) if len(kept) else -1.0


def summarize(precision: np.ndarray, recall: np.ndarray, buckets: list[Bucket]) -> dict[str, float]:
    """The official 12 (YTVIS) or 18 (OVIS) summary numbers (those of the buckets given, "all" first)."""
    index = {b.name: i for i, b in enumerate(buckets)}
    m100 = MAX_DETS.index(100)

    def ap(bucket: str = "all", iou: float | None = None) -> float:
        s = precision
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        return _mean_defined(s[:, :, :, index[bucket], m100])

    def ar(bucket: str = "all", max_det: int = 100) -> float:
        return _mean_defined(recall[:, :, index[bucket], MAX_DETS.index(max_det)])

    sizes = (("s", "small"), ("m", "medium"), ("l", "large"))
    stats = {"AP": ap(), "AP50": ap(iou=0.5), "AP75": ap(iou=0.75)}
    stats.update({f"AP{key}": ap(name) for key, name in sizes if name in index})
    with_occlusion = "occ_light" in index
    if with_occlusion:
        stats.update(AP_light=ap("occ_light"), AP_medium=ap("occ_medium"), AP_heavy=ap("occ_heavy"))
    stats.update(AR1=ar(max_det=1), AR10=ar(max_det=10), AR100=ar())
    stats.update({f"AR{key}": ar(name) for key, name in sizes if name in index})
    if with_occlusion:
        stats.update(AR_light=ar("occ_light"), AR_medium=ar("occ_medium"), AR_heavy=ar("occ_heavy"))
    return stats


def evaluate_ap(gt: GroundTruth, results: list[ResultTrack], *, with_occlusion: bool | None = None,
                pair_ious: PairIous = track_ious, buckets: list[Bucket] | None = None) -> APResult:
    """Video AP/AR of ``results`` against ``gt``; OVIS occlusion buckets when the GT has occlusion labels.

    A caller evaluating many variants of the same inputs (``spvis analyze``) passes a ``pair_ious`` that
    remembers the (prediction, GT) pairs it has seen, and may restrict ``buckets`` to the ones it reads ("all"
    first; ``stats`` then holds the numbers of those buckets only)."""
    if with_occlusion is None:
        with_occlusion = gt.has_occlusion
    buckets = buckets_for(with_occlusion) if buckets is None else buckets
    if buckets[0].name != "all":
        raise ValueError(f"the first bucket must be 'all', got {buckets[0].name!r}")
    cells = _build_cells(gt, results, pair_ious)
    cat_ids = gt.category_ids
    num_thr, num_rec = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = -np.ones((num_thr, num_rec, len(cat_ids), len(buckets), len(MAX_DETS)))
    recall = -np.ones((num_thr, len(cat_ids), len(buckets), len(MAX_DETS)))
    for k, cid in enumerate(cat_ids):
        if not cells[cid]:
            continue
        for b, bucket in enumerate(buckets):
            matches = [cell.match(bucket) for cell in cells[cid]]
            for m, max_det in enumerate(MAX_DETS):
                out = _precision_recall(matches, max_det)
                if out is not None:
                    precision[:, :, k, b, m], recall[:, k, b, m] = out
    stats = summarize(precision, recall, buckets)
    per_category = {cid: _mean_defined(precision[:, :, k, 0, -1]) for k, cid in enumerate(cat_ids)}
    return APResult(cat_ids, buckets, precision, recall, stats, per_category)
