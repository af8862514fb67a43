"""Per-video tables shared by VPQ and STQ: read a VIPSeg submission, count (GT id, pred id) pixels per frame.

The official scripts re-read every PNG once per window and run ``np.unique`` over stacked frames. Here each
frame is read once and reduced to a short list of (GT id, pred id, pixels) triples; every window of every
length is then a difference of cumulative sums over frames (``VideoTables``), and STQ uses the same triples.

Submission layout (reference §3): ``SUBMIT_DIR/pred.json`` (``annotations[{video_id, annotations[per frame
{segments_info[{id, category_id}]}]}]``, frames matched to the ground truth by position) and
``SUBMIT_DIR/pan_pred/<video>/<frame>.png`` (RGB ids, 0 = VOID).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from spvis.data.png_io import read_id_png
from spvis.data.vipseg import VOID_ID, PanopticDataset, PanopticVideo, Segment, parse_segments
from spvis.errors import DataFormatError
from spvis.utils.json_io import read_json

ID_BITS = 24  # ids are R + 256 G + 256² B


@dataclass
class Listing:
    """What one side's json says per frame about each of its N ids (T frames), in dense id order.

    ``first_pos`` is the position of the id's first entry in the frame's ``segments_info``; ``cat_first`` /
    ``crowd_first`` come from that entry (the official VPQ keeps the first entry), ``cat_last`` from the last
    one (the official STQ paints entries in order, so the last wins); ``area`` sums all entries. Category
    values are indices into the category list, -1 where the id is not listed in that frame. ``instance`` is
    the 0-based order of first appearance over the video's listings (-1 if never listed).
    """

    listed: np.ndarray  # (T, N) bool
    first_pos: np.ndarray  # (T, N) int64
    cat_first: np.ndarray  # (T, N) int64
    cat_last: np.ndarray  # (T, N) int64
    crowd_first: np.ndarray  # (T, N) bool
    area: np.ndarray  # (T, N) float64
    instance: np.ndarray  # (N,) int64


@dataclass
class VideoTables:
    """One video reduced to pair counts: K (GT id, pred id) pairs with pixel counts per frame, plus listings."""

    video_id: str
    source: str  # the GT json, for error messages
    gt_ids: np.ndarray  # (G,) int64 sorted raw ids seen in GT PNGs or listed in the GT json
    pred_ids: np.ndarray  # (P,) int64 likewise for the prediction
    pair_g: np.ndarray  # (K,) int64 index into gt_ids
    pair_p: np.ndarray  # (K,) int64 index into pred_ids
    counts: np.ndarray  # (T, K) int64 pixels of each pair in each frame
    gt: Listing
    pred: Listing

    @property
    def num_frames(self) -> int:
        return int(self.counts.shape[0])


def frame_pairs(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (GT id, pred id) pairs of one frame and their pixel counts: three (M,) int64 arrays.

    gt, pred: (H, W) integer ids < 256³. Runs of equal pairs along rows are collapsed first (one linear pass),
    so the sort that follows sees a few thousand runs instead of every pixel.
    """
    key = (gt.ravel().astype(np.uint64) << np.uint64(ID_BITS)) | pred.ravel().astype(np.uint64)  # (H*W,)
    if key.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1))  # (R,) run starts
    runs = np.diff(np.append(starts, key.size))  # (R,) run lengths
    values, inverse = np.unique(key[starts], return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=runs).astype(np.int64)
    return ((values >> np.uint64(ID_BITS)).astype(np.int64), (values & np.uint64(0xFFFFFF)).astype(np.int64),
            counts)


def build_listing(frames: Sequence[Sequence[Segment]], ids: np.ndarray, category_index: dict[int, int]) -> Listing:
    """The ``Listing`` of per-frame segments over the dense ``ids`` (every listed id must be in ``ids``)."""
    T, N = len(frames), len(ids)
    position = {int(v): i for i, v in enumerate(ids.tolist())}
    listed = np.zeros((T, N), dtype=bool)
    first_pos = np.zeros((T, N), dtype=np.int64)
    cat_first = np.full((T, N), -1, dtype=np.int64)
    cat_last = np.full((T, N), -1, dtype=np.int64)
    crowd_first = np.zeros((T, N), dtype=bool)
    area = np.zeros((T, N), dtype=np.float64)
    instance = np.full(N, -1, dtype=np.int64)
    next_instance = 0
    for t, segments in enumerate(frames):
        for j, s in enumerate(segments):
            i = position[s.id]
            c = category_index[s.category_id]
            if not listed[t, i]:
                listed[t, i] = True
                first_pos[t, i] = j
                cat_first[t, i] = c
                crowd_first[t, i] = bool(s.iscrowd)
            cat_last[t, i] = c
            area[t, i] += float(s.area or 0)
            if instance[i] < 0:
                instance[i] = next_instance
                next_instance += 1
    return Listing(listed, first_pos, cat_first, cat_last, crowd_first, area, instance)


class VideoTableBuilder:
    """Collects one video's frames one at a time (no frame is kept), then builds its ``VideoTables``."""

    def __init__(self) -> None:
        self._frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add_frame(self, gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """gt, pred: (H, W) ids of the same frame. Returns its ``frame_pairs`` (GT ids, pred ids, pixels)."""
        if gt.shape != pred.shape:
            raise ValueError(f"GT frame is {gt.shape} but the prediction is {pred.shape}")
        pairs = frame_pairs(gt, pred)
        self._frames.append(pairs)
        return pairs

    def finish(self, gt_segments: Sequence[Sequence[Segment]], pred_segments: Sequence[Sequence[Segment]],
               category_index: dict[int, int], *, video_id: str = "", source: str = "") -> VideoTables:
        """The tables of the added frames with the frames' GT and predicted ``segments_info``."""
        T = len(self._frames)
        if len(gt_segments) != T or len(pred_segments) != T:
            raise ValueError(f"{T} frames but {len(gt_segments)} GT and {len(pred_segments)} predicted listings")
        listed_g = [s.id for segs in gt_segments for s in segs]
        listed_p = [s.id for segs in pred_segments for s in segs]
        gt_ids = np.unique(np.concatenate([f[0] for f in self._frames] + [np.asarray(listed_g, dtype=np.int64)]))
        pred_ids = np.unique(np.concatenate([f[1] for f in self._frames] + [np.asarray(listed_p, dtype=np.int64)]))
        P = max(len(pred_ids), 1)
        frame_of = np.concatenate([np.full(len(f[2]), t, dtype=np.int64) for t, f in enumerate(self._frames)]
                                  + [np.zeros(0, dtype=np.int64)])
        g = np.searchsorted(gt_ids, np.concatenate([f[0] for f in self._frames] + [np.zeros(0, np.int64)]))
        p = np.searchsorted(pred_ids, np.concatenate([f[1] for f in self._frames] + [np.zeros(0, np.int64)]))
        c = np.concatenate([f[2] for f in self._frames] + [np.zeros(0, np.int64)])
        pairs, k = np.unique(g * P + p, return_inverse=True)  # (K,), (M,)
        K = len(pairs)
        counts = np.bincount(frame_of * K + k.ravel(), weights=c, minlength=T * K).astype(np.int64).reshape(T, K)
        return VideoTables(video_id, source, gt_ids, pred_ids, pairs // P, pairs % P, counts,
                           build_listing(gt_segments, gt_ids, category_index),
                           build_listing(pred_segments, pred_ids, category_index))


def video_tables(gt_frames: Sequence[np.ndarray], gt_segments: Sequence[Sequence[Segment]],
                 pred_frames: Sequence[np.ndarray], pred_segments: Sequence[Sequence[Segment]],
                 category_index: dict[int, int], *, video_id: str = "") -> VideoTables:
    """``VideoTables`` of in-memory frames: gt_frames / pred_frames are T arrays (H, W) of ids."""
    builder = VideoTableBuilder()
    for gt, pred in zip(gt_frames, pred_frames, strict=True):
        builder.add_frame(np.asarray(gt), np.asarray(pred))
    return builder.finish(gt_segments, pred_segments, category_index, video_id=video_id)


# ----------------------------------------------------------------------------------------------------------
# Submission files


@dataclass
class VPSSubmission:
    """A parsed VIPSeg submission: per GT video, the predicted ``segments_info`` of each frame."""

    root: Path
    json_path: Path
    frames: dict[str, list[list[Segment]]]

    def png_path(self, video_id: str, frame_name: str) -> Path:
        return self.root / "pan_pred" / video_id / f"{frame_name}.png"


def load_vps_submission(submit_dir: str | Path, gt: PanopticDataset) -> VPSSubmission:
    """Parse ``pred.json`` for every GT video (frame counts must match; categories must be known)."""
    root = Path(submit_dir)
    if not root.is_dir():
        raise DataFormatError(root, "submission folder not found (it holds pred.json and pan_pred/)")
    path = root / "pred.json"
    data = read_json(path, what="submission json")
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataFormatError(path, "must be an object with a list of {video_id, annotations}", field="annotations")
    by_video: dict[str, list] = {}
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or not isinstance(a.get("annotations"), list):
            raise DataFormatError(path, "must be an object with a list 'annotations' (one entry per frame)",
                                  entry=f"annotations[{i}]", field="annotations")
        vid = str(a.get("video_id"))
        if vid in by_video:
            raise DataFormatError(path, "two entries for this video", entry=f"video {vid}", field="video_id")
        by_video[vid] = a["annotations"]
    cat_ids = {c.id for c in gt.categories}
    frames: dict[str, list[list[Segment]]] = {}
    for video in gt.videos:
        raw = by_video.get(video.video_id)
        entry = f"video {video.video_id}"
        if raw is None:
            raise DataFormatError(path, "no prediction for this ground-truth video", entry=entry, field="video_id")
        if len(raw) != video.length:
            raise DataFormatError(path, f"has {len(raw)} frames but the ground truth has {video.length}", entry=entry,
                                  field="annotations")
        per_frame = []
        for t, (fa, frame) in enumerate(zip(raw, video.frames)):
            if not isinstance(fa, dict):
                raise DataFormatError(path, "must be an object", entry=f"{entry}: annotations[{t}]")
            per_frame.append(parse_segments(path, fa.get("segments_info"), entry=f"{entry}: frame {frame.name}",
                                            category_ids=cat_ids, require_area=False))
        frames[video.video_id] = per_frame
    return VPSSubmission(root, path, frames)


def read_pred_frame(sub: VPSSubmission, video_id: str, frame_name: str, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint32 predicted ids of one frame; the PNG must exist with the GT frame's size."""
    path = sub.png_path(video_id, frame_name)
    entry = f"video {video_id}: frame {frame_name}"
    if not path.is_file():
        raise DataFormatError(path, "missing frame: every ground-truth frame needs a prediction PNG", entry=entry,
                              field="pan_pred")
    ids = read_id_png(path, entry=entry, field="pan_pred")
    if ids.shape != shape:
        raise DataFormatError(path, f"is {ids.shape[0]}x{ids.shape[1]} but the ground-truth mask is "
                              f"{shape[0]}x{shape[1]}", entry=entry, field="size")
    return ids


def check_pred_ids(sub: VPSSubmission, video_id: str, frame_name: str, segments: Sequence[Segment],
                   png_ids: np.ndarray) -> None:
    """DataFormatError unless the frame's PNG ids (0 = VOID aside) are exactly the ids pred.json lists."""
    present = set(np.unique(png_ids).tolist()) - {VOID_ID}
    listed = {s.id for s in segments}
    entry = f"video {video_id}: frame {frame_name}"
    path = sub.png_path(video_id, frame_name)
    if present - listed:
        raise DataFormatError(path, f"segment id {min(present - listed)} is in the PNG but not in pred.json",
                              entry=entry, field="segments_info")
    if listed - present:
        raise DataFormatError(sub.json_path, f"segment id {min(listed - present)} is listed but absent from {path}",
                              entry=entry, field="segments_info")


def read_video_tables(gt: PanopticDataset, video: PanopticVideo, sub: VPSSubmission,
                      category_index: dict[int, int]) -> VideoTables:
    """Read one video's GT and predicted PNGs (each once) into ``VideoTables``, checking the prediction."""
    builder = VideoTableBuilder()
    pred_segments = sub.frames[video.video_id]
    for frame, segments in zip(video.frames, pred_segments):
        gt_ids = read_id_png(gt.mask_path(frame), entry=f"video {video.video_id}: frame {frame.name}", field="mask")
        pred_ids = read_pred_frame(sub, video.video_id, frame.name, gt_ids.shape)
        _, pred_present, _ = builder.add_frame(gt_ids, pred_ids)
        check_pred_ids(sub, video.video_id, frame.name, segments, pred_present)
    return builder.finish([f.segments for f in video.frames], pred_segments, category_index,
                          video_id=video.video_id, source=str(gt.json_path))
