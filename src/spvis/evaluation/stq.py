"""Segmentation and tracking quality (STQ = sqrt(AQ x SQ)) equal to VIPSeg's / DVIS's ``eval_stq_vspw.py``.

Rules (reference §4), all kept: a pixel's label is semantic << 16 + instance, where semantic = category id
of the frame's json entry for the pixel's PNG id (the last entry wins) and instance = the 0-based order of
first appearance of the id in the video's ``segments_info`` (GT and prediction numbered separately);
pixels whose id the frame does not list get semantic 255 and instance 255. Thing pixels with instance 0 are
"crowd" (the first segment of a video, whenever it is a thing): they leave AQ on both sides. AQ per video =
Σ_g 1/|g| Σ_p TPA(g,p) IoU(g,p) over thing tubes, pooled as Σ AQ_video / Σ #GT tubes. SQ = class IoU of one
confusion matrix over all frames with the GT-ignore row removed; every class with a non-zero union counts,
including the ignore column (prediction leaves labelled pixels unassigned: IoU 0) and classes that are only
predicted. ``iscrowd`` plays no role. The official confusion matrix has 124 classes + ignore; here it has
(largest category id + 1) + ignore, which gives the same numbers whenever every id is below 124.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spvis.data.vipseg import Category
from spvis.errors import SpvisError
from spvis.evaluation.panoptic_io import Listing, VideoTables

IGNORE = 255  # semantic and instance value of unlabelled pixels
BIT_SHIFT = 16  # label = semantic << 16 + instance
OFFSET = 2 ** 24  # intersection key = GT label * OFFSET + pred label


class STQAccumulator:
    """Accumulates the confusion matrix and per-video AQ terms; ``result`` gives STQ, AQ, SQ (x100)."""

    def __init__(self, categories: Sequence[Category]):
        ids = [c.id for c in categories]
        self.num_classes = max(ids) + 1
        if self.num_classes > IGNORE:
            raise SpvisError(f"STQ needs category ids below {IGNORE} (the ignore label), got {max(ids)}")
        self.category_ids = np.array(ids, dtype=np.int64)  # category index -> dataset id
        self.is_thing = np.zeros(self.num_classes + 1, dtype=bool)  # indexed by semantic, ignore at the end
        self.is_thing[[c.id for c in categories if c.isthing]] = True
        size = self.num_classes + 1
        self.confusion = np.zeros((size, size), dtype=np.int64)  # rows GT, columns prediction
        self.aq_sum = 0.0
        self.tubes = 0
        self.videos = 0

    def _labels(self, side: Listing, t: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(semantic, instance) (M,) int64 of ids i in frames t; IGNORE where the frame does not list the id."""
        listed = side.listed[t, i]
        semantic = np.where(listed, self.category_ids[np.maximum(side.cat_last[t, i], 0)], IGNORE)
        instance = np.where(listed, side.instance[i], IGNORE)
        if instance.max(initial=0) >= 2 ** BIT_SHIFT:
            raise SpvisError(f"STQ numbers at most {2 ** BIT_SHIFT} segment ids per video")
        return semantic, instance

    def add(self, video: VideoTables) -> None:
        """Add one video (one STQ sequence)."""
        t, k = np.nonzero(video.counts)  # (M,) frames and pairs with pixels
        pixels = video.counts[t, k]
        gsem, ginst = self._labels(video.gt, t, video.pair_g[k])
        psem, pinst = self._labels(video.pred, t, video.pair_p[k])
        nc = self.num_classes
        row, col = np.where(gsem == IGNORE, nc, gsem), np.where(psem == IGNORE, nc, psem)
        size = nc + 1
        self.confusion += np.bincount(row * size + col, weights=pixels, minlength=size * size).astype(
            np.int64).reshape(size, size)

        gthing = self.is_thing[row]
        crowd = gthing & (ginst == 0)  # instance 0 of a thing class: the crowd region
        gmask = gthing & ~crowd
        pmask = self.is_thing[col] & ~crowd
        glabel = (gsem << BIT_SHIFT) + ginst
        plabel = (psem << BIT_SHIFT) + pinst
        gt_ids, gt_inverse = np.unique(glabel[gmask], return_inverse=True)
        gt_size = np.bincount(gt_inverse.ravel(), weights=pixels[gmask])  # (N_g,)
        pr_ids, pr_inverse = np.unique(plabel[pmask], return_inverse=True)
        pr_size = np.bincount(pr_inverse.ravel(), weights=pixels[pmask])  # (N_p,)
        both = gmask & pmask
        keys, inverse = np.unique(glabel[both] * OFFSET + plabel[both], return_inverse=True)
        tpa = np.bincount(inverse.ravel(), weights=pixels[both])  # (N_i,)
        gi = np.searchsorted(gt_ids, keys // OFFSET)
        pi = np.searchsorted(pr_ids, keys % OFFSET)
        g_size, p_size = gt_size[gi], pr_size[pi]
        terms = tpa * (tpa / (g_size + p_size - tpa)) / g_size  # (N_i,) TPA * IoU / |g|
        self.aq_sum += float(terms.sum())
        self.tubes += len(gt_ids)
        self.videos += 1

    def result(self) -> dict:
        """STQ, AQ, SQ (x100). SQ is NaN when no pixel was labelled or predicted (the official 0 / 0)."""
        confusion = self.confusion.copy()
        confusion[self.num_classes, :] = 0  # GT ignore row removed
        inter = np.diag(confusion).astype(np.float64)
        unions = confusion.sum(axis=0) + confusion.sum(axis=1) - inter
        counted = np.count_nonzero(unions)
        sq = float(np.sum(inter / np.maximum(unions, 1e-15)) / counted) if counted else float("nan")
        aq = self.aq_sum / max(self.tubes, 1e-15)
        stq = float(np.sqrt(aq * sq))
        return {"STQ": 100.0 * stq, "AQ": 100.0 * aq, "SQ": 100.0 * sq}
