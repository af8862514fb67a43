"""Video semantic segmentation metrics equal to DVIS++'s ``eval_miou_vspw.py`` / ``eval_vc_vspw.py`` (VSPW).

Rules (reference §5), all kept. mIoU: one 124 x 124 confusion matrix over every mask of every split video,
GT 1..124 -> 0..123, GT 0 (others) and 255 (void) dropped; IoU_c = diag / (row + col - diag); mIoU = nan-sum
of IoU over classes with GT pixels / their number (classes only predicted are ignored). Acc = pixel accuracy,
mAcc = nan-mean of per-class recall, fwIoU = GT-frequency-weighted IoU. VC_n (n = 8, 16): for each video with
more than n frames and each start i in 0..L-n-1 (L - n windows: the last one is skipped), G = pixels whose
raw GT value is the same in frames i..i+n-1 (others / void included), P = same for the prediction,
acc = |G and P| / |G| (NaN if G is empty); VC_n = nan-mean over all windows of all videos. ``VC16_dvis`` is
DVIS++'s printed "VC16": the nan-mean over the VC8 and VC16 windows together (its list is never reset).
Unlike the official scripts, a prediction value outside 0..123 is an error (they fold it into a wrong cell).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from spvis.data.png_io import read_label_png
from spvis.data.vspw import VSPW_NUM_CLASSES, VSPWDataset, VSPWVideo, load_vspw
from spvis.errors import DataFormatError

VC_WINDOWS = (8, 16)
METRIC_SCALE = 100  # every metric in metrics.json is a percentage: official fraction = ours / METRIC_SCALE
SCALE_NOTE = ("mIoU, Acc, mAcc, fwIoU and VC are x100 (percent); the official eval_miou_vspw.py / eval_vc_vspw.py "
              "compute fractions: divide by 100 to compare")
_RUN_CAP = 255  # run lengths are only compared with n <= 16, so they saturate here (uint8 arithmetic)


def _row_starts(num_classes: int) -> np.ndarray:
    """int32 (256,): raw GT value -> first cell of its class row in the flattened (C, C) matrix; values the
    official script drops (0 others, 255 void, > C) -> a spill row past the matrix, cut off after counting."""
    row_start = np.full(256, num_classes * num_classes, dtype=np.int32)
    kept = min(num_classes, 254)
    row_start[1:kept + 1] = np.arange(kept, dtype=np.int32) * num_classes
    return row_start


def _cells(gt: np.ndarray, pred: np.ndarray, row_start: np.ndarray) -> np.ndarray:
    """int32 (N,) flattened (GT class, prediction) cell of each pixel (one gather and one add per pixel)."""
    cells = row_start[gt.ravel()]
    cells += pred.ravel()
    return cells


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int = VSPW_NUM_CLASSES) -> np.ndarray:
    """int64 (C, C) rows GT, columns prediction, of one raw GT mask and prediction (both (H, W) uint8)."""
    cells = num_classes * num_classes
    hist = np.bincount(_cells(gt, pred, _row_starts(num_classes)), minlength=cells + 256)
    return hist[:cells].reshape(num_classes, num_classes)


def scores_from_confusion(confusion: np.ndarray) -> dict:
    """mIoU, Acc, mAcc, fwIoU as fractions of a (C, C) confusion matrix, with the official NaN rules."""
    cm = confusion.astype(np.float64)
    diag, rows, cols = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = diag / (rows + cols - diag)  # (C,) NaN for classes absent on both sides
        has_gt = rows > 0
        miou = float(np.nansum(iou * has_gt) / has_gt.sum())
        acc = float(diag.sum() / cm.sum())
        macc = float(np.nanmean(diag / rows)) if has_gt.any() else float("nan")
        freq = rows / cm.sum()
        fwiou = float((freq[freq > 0] * iou[freq > 0]).sum())
    return {"mIoU": miou, "Acc": acc, "mAcc": macc, "fwIoU": fwiou}


def _advance(runs: np.ndarray, same: np.ndarray) -> None:
    """runs = same ? min(runs, cap - 1) + 1 : 1, in place on uint8 (H, W)."""
    np.minimum(runs, _RUN_CAP - 1, out=runs)
    runs += 1
    np.multiply(runs, same.view(np.uint8), out=runs)
    np.maximum(runs, 1, out=runs)


class VideoStream:
    """One video of known length L fed frame by frame (two frames kept): its confusion matrix and VC windows.

    VC: the window [i, i + n) is constant at a pixel exactly when the pixel's run length (frames its value has
    stayed the same) at frame i + n - 1 is at least n (equal to frame i for every j <=> equal frame to frame),
    so window i is scored when frame i + n - 1 arrives; windows i = 0..L-n-1 are scored, the last one (ending
    at frame L - 1) is skipped. Confusion: consecutive frames mostly agree, so the current frame's cell
    histogram is updated from the pixels whose GT or prediction changed, then added to the video's total.
    """

    def __init__(self, length: int, windows: Sequence[int] = VC_WINDOWS, num_classes: int = VSPW_NUM_CLASSES):
        if any(not 1 <= n < _RUN_CAP for n in windows):
            raise ValueError(f"VC window lengths must be in 1..{_RUN_CAP - 1}, got {windows}")
        self.length = length
        self.windows = tuple(windows)
        self.num_classes = num_classes
        self.t = 0
        self.accs: dict[int, list[float]] = {n: [] for n in self.windows}
        self._row_start = _row_starts(num_classes)
        self._bins = num_classes * num_classes + 256
        self._total = np.zeros(self._bins, dtype=np.int64)  # summed cell histograms of all frames so far
        self._frame: np.ndarray | None = None  # (bins,) cell histogram of the latest frame
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._runs: tuple[np.ndarray, np.ndarray] | None = None  # GT / prediction run lengths, (H, W) uint8

    @property
    def confusion(self) -> np.ndarray:
        """int64 (C, C) summed over the frames added so far."""
        C = self.num_classes
        return self._total[:C * C].reshape(C, C)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Frame t: gt / pred (H, W) uint8 raw GT values and predicted ids."""
        if self._prev is None or self._runs is None or self._frame is None:
            self._runs = (np.ones(gt.shape, dtype=np.uint8), np.ones(gt.shape, dtype=np.uint8))
            self._frame = np.bincount(_cells(gt, pred, self._row_start), minlength=self._bins)
        else:
            prev_g, prev_p = self._prev
            if gt.shape != prev_g.shape:
                raise ValueError(f"frame {self.t} is {gt.shape}, the previous one {prev_g.shape}")
            g_same, p_same = gt == prev_g, pred == prev_p
            _advance(self._runs[0], g_same)
            _advance(self._runs[1], p_same)
            changed = np.flatnonzero(~(g_same & p_same))  # (M,) pixels whose cell may have moved
            if changed.size:
                old = _cells(prev_g.ravel()[changed], prev_p.ravel()[changed], self._row_start)
                new = _cells(gt.ravel()[changed], pred.ravel()[changed], self._row_start)
                self._frame += np.bincount(new, minlength=self._bins) - np.bincount(old, minlength=self._bins)
        self._total += self._frame
        self._prev = (gt, pred)
        g_runs, p_runs = self._runs
        scored = [n for n in self.windows if self.length > n and n - 1 <= self.t <= self.length - 2]
        if scored:
            both_runs = np.minimum(g_runs, p_runs)  # >= n exactly where GT and prediction are both constant
            for n in scored:
                g_count = int(np.count_nonzero(g_runs >= n))
                both = int(np.count_nonzero(both_runs >= n))
                self.accs[n].append(both / g_count if g_count else float("nan"))
        self.t += 1


def vc_windows(gt: Sequence[np.ndarray], pred: Sequence[np.ndarray], n: int) -> np.ndarray:
    """float64 (L - n,) window accuracies |G and P| / |G| (NaN where G is empty) of in-memory frames; empty if
    L <= n. gt, pred: L frames (H, W) of raw GT values / predicted ids."""
    video = VideoStream(len(gt), (n,))
    for g, p in zip(gt, pred, strict=True):
        video.add(g, p)
    return np.asarray(video.accs[n], dtype=np.float64)


class VSSAccumulator:
    """Confusion matrix and VC window accuracies over videos; ``result`` gives the metrics (x100)."""

    def __init__(self, num_classes: int = VSPW_NUM_CLASSES, windows: Sequence[int] = VC_WINDOWS):
        self.num_classes = num_classes
        self.windows = tuple(windows)
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.vc: dict[int, list[float]] = {n: [] for n in self.windows}

    def add_video(self, frames: Iterable[tuple[np.ndarray, np.ndarray]], length: int) -> None:
        """One video of ``length`` frames: (raw GT mask, predicted ids) pairs (H, W) in frame order."""
        video = VideoStream(length, self.windows, self.num_classes)
        for g, p in frames:
            video.add(g, p)
        if video.t != length:
            raise ValueError(f"video announced {length} frames but {video.t} came")
        self.confusion += video.confusion
        for n in self.windows:
            self.vc[n].extend(video.accs[n])

    def add(self, gt: Sequence[np.ndarray], pred: Sequence[np.ndarray]) -> None:
        """One in-memory video: gt / pred are its L frames (H, W)."""
        self.add_video(zip(gt, pred, strict=True), len(gt))

    def result(self) -> dict:
        """mIoU, Acc, mAcc, fwIoU, VC<n> for each n and VC16_dvis (pooled VC8 + VC16 windows), all x100."""
        out = {k: 100.0 * v for k, v in scores_from_confusion(self.confusion).items()}
        pooled: list[float] = []
        for n in self.windows:
            pooled += self.vc[n]
            out[f"VC{n}"] = 100.0 * _nanmean(np.asarray(self.vc[n], dtype=np.float64))
            if n == 16 and 8 in self.windows:
                out["VC16_dvis"] = 100.0 * _nanmean(np.asarray(pooled, dtype=np.float64))
        return out


def _nanmean(x: np.ndarray) -> float:
    keep = x[~np.isnan(x)]
    return float(keep.mean()) if keep.size else float("nan")


def read_prediction(path: Path, shape: tuple[int, int], *, entry: str,
                    num_classes: int = VSPW_NUM_CLASSES) -> np.ndarray:
    """uint8 (H, W) predicted class ids of one frame: the PNG must exist, match the GT size, hold 0..C-1."""
    if not path.is_file():
        raise DataFormatError(path, "missing frame: every ground-truth mask needs a prediction PNG", entry=entry,
                              field="pred")
    pred = read_label_png(path, entry=entry, field="pred")
    if pred.shape != shape:
        raise DataFormatError(path, f"is {pred.shape[0]}x{pred.shape[1]} but the ground-truth mask is "
                              f"{shape[0]}x{shape[1]}", entry=entry, field="size")
    top = int(pred.max(initial=0))
    if top >= num_classes:
        raise DataFormatError(path, f"holds {top}, outside the label range 0..{num_classes - 1}", entry=entry,
                              field="value")
    return pred


def _video_frames(ds: VSPWDataset, video: VSPWVideo, pred_dir: Path) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(GT mask, prediction) uint8 (H, W) per frame; every mask of a video must have the first one's size."""
    first: tuple[int, int] | None = None
    for frame in video.frames:
        entry = f"video {video.name}: frame {frame.name}"
        gt = read_label_png(ds.mask_path(frame), entry=entry, field="mask")
        if first is not None and gt.shape != first:
            raise DataFormatError(ds.mask_path(frame), f"is {gt.shape[0]}x{gt.shape[1]} but the video's first mask is "
                                  f"{first[0]}x{first[1]}", entry=entry, field="size")
        first = gt.shape
        yield gt, read_prediction(pred_dir / video.name / f"{frame.name}.png", gt.shape, entry=entry)


def evaluate_vss(root: str | Path, split: str, pred_dir: str | Path, *, progress: bool = False) -> dict:
    """mIoU, Acc, mAcc, fwIoU, VC8, VC16, VC16_dvis (x100; None where the official value is NaN) of
    ``pred_dir/<video>/<frame>.png`` on a VSPW split.

    Reads what the official scripts read: the split list and ``data/<video>/mask/*.png`` (no ``origin/`` frames
    needed); every mask needs a prediction of the same name.
    """
    start = time.perf_counter()
    ds = load_vspw(root, split, frames=False)
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataFormatError(pred_dir, "prediction folder not found (it holds <video>/<frame>.png)")
    acc = VSSAccumulator()
    videos = ds.videos
    if progress:
        from tqdm import tqdm

        videos = tqdm(videos, desc="vss eval", unit="video")
    for video in videos:
        acc.add_video(_video_frames(ds, video, pred_dir), video.length)
    metrics: dict = {k: None if math.isnan(v) else v for k, v in acc.result().items()}  # undefined -> json null
    metrics["scale"] = METRIC_SCALE
    metrics["scale_note"] = SCALE_NOTE
    metrics["info"] = {"task": "vss", "gt": str(ds.root), "split": split, "pred": str(pred_dir),
                       "num_videos": len(ds.videos), "num_frames": sum(v.length for v in ds.videos),
                       "num_classes": ds.num_classes, "scale": "x100",
                       "seconds": round(time.perf_counter() - start, 3)}
    return metrics


def format_vss_metrics(metrics: dict) -> str:
    """One table of the VSS metrics (x100)."""
    keys = ("mIoU", "Acc", "mAcc", "fwIoU", "VC8", "VC16", "VC16_dvis")
    cells = ["-" if metrics[k] is None else f"{metrics[k]:.2f}" for k in keys]
    lines = ["Video semantic segmentation (VSPW, x100; - = undefined, e.g. no video longer than 16 frames)",
             "  ".join(f"{k:>9}" for k in keys), "  ".join(f"{c:>9}" for c in cells)]
    return "\n".join(lines)
