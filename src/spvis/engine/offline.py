"""Offline inference with bounded memory: feed a video to the model's offline entry points, write its entries.

The model does the work (``spvis.modeling.inference.offline``: pass 1 keeps per-frame queries and, within the
budget, mask features; the refiner runs once over the video; the top-k entries' masks are decoded window by window).
This engine plans the memory budget, reads the source (twice when the features did not all fit: pass 2 recomputes
the segmenter for the frames not cached), encodes each decoded window's masks to RLE in one batch and builds the
results: memory is O(T x Q x C + budget), never O(T x mask size).

Results follow DVIS_offline (reference §5): entries sorted by descending score, score = the combined class
probability alone (no mask-quality term), masks = refiner mask logits > 0 at the frame's size; per-frame results
(overlays) show each track once, with its best entry's class. TEST.TRACK_NMS_IOU soft-suppresses duplicate tracks.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from spvis.data.rle import encode_column_major
from spvis.engine.frame_result import FrameResult, VideoResult
from spvis.engine.precision import autocast_name
from spvis.engine.streaming import check_frame
from spvis.engine.track_rescoring import soft_suppress_duplicates
from spvis.errors import SpvisError
from spvis.modeling.inference import OfflineSelection, OfflineState
from spvis.modeling.preprocessing import padded_size, resized_shape

_GB = 1024**3


def frame_windows(frames: Iterable[np.ndarray], size: int, limit: int | None = None) -> Iterator[list[np.ndarray]]:
    """Group a frame iterator into lists of ``size`` frames (stops after ``limit`` frames)."""
    window: list[np.ndarray] = []
    for index, frame in enumerate(frames):
        if limit is not None and index >= limit:
            break
        window.append(frame)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def padded_input_size(cfg, height: int, width: int) -> tuple[int, int]:
    """(Hp, Wp) of the network input for a (height, width) video."""
    resized = resized_shape(height, width, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    return padded_size(*resized, cfg.MODEL.SIZE_DIVISIBILITY)


def mask_feature_bytes(cfg, height: int, width: int) -> int:
    """Bytes of one frame's float32 mask features (Cm x Hp/s x Wp/s) for a (height, width) video."""
    hp, wp = padded_input_size(cfg, height, width)
    stride = cfg.MODEL.PIXEL_DECODER.COMMON_STRIDE
    return cfg.MODEL.PIXEL_DECODER.MASK_DIM * -(-hp // stride) * -(-wp // stride) * 4


def plan_windows(cfg, *, height: int, width: int, num_queries: int, max_memory_gb: float,
                 window_size: int | None) -> tuple[int, int]:
    """(pass-2 window, frames of mask features to cache) that fit in ``max_memory_gb``.

    Half of the budget goes to the feature cache; a pass-2 window holds its features plus the k selected
    masks at padded and original resolution in float32.
    """
    budget = max(max_memory_gb, 0.0) * _GB
    per_feature = mask_feature_bytes(cfg, height, width)
    cache_frames = int(budget * 0.5 // per_feature)
    if window_size is None:
        k = min(cfg.TEST.MAX_NUM, num_queries)
        hp, wp = padded_input_size(cfg, height, width)
        per_frame = per_feature + k * 4 * (hp * wp + height * width) + k * height * width  # + bool masks
        window_size = int(min(max(1, budget * 0.5 // per_frame), 64))
    return max(1, window_size), cache_frames


@torch.no_grad()
def run_offline(
    model,
    cfg,
    source,
    max_memory_gb: float | None = None,
    window_size: int | None = None,
    *,
    video_id: int | str | None = None,
    category_ids: Sequence[int] | None = None,
    frame_callback: Callable[[FrameResult], None] | None = None,
) -> VideoResult:
    """Offline inference of one video with bounded memory -> VideoResult (the online engine's format).

    ``source``: a frame source (``.name``, ``.height``, ``.width``, iterable of uint8 RGB (H, W, 3) frames)
    that can be iterated twice (pass 2 re-reads frames whose features were not cached).
    ``category_ids[k]`` is the dataset id of contiguous class k (default k + 1), as in the online engine.
    ``frame_callback`` receives a FrameResult per frame during pass 2 (overlay rendering).
    """
    if getattr(model, "refiner", None) is None:
        raise SpvisError("offline mode needs a model with a refiner (set MODEL.REFINER.ENABLED True)")
    budget = cfg.TEST.MAX_MEMORY_GB if max_memory_gb is None else max_memory_gb
    height, width = int(source.height), int(source.width)
    decode_window, cache_frames = plan_windows(cfg, height=height, width=width,
                                               num_queries=cfg.MODEL.DECODER.NUM_QUERIES, max_memory_gb=budget,
                                               window_size=window_size)
    name = str(getattr(source, "name", "<frames>"))
    was_training = model.training
    model.eval()
    try:
        state = model.init_offline_state(cache_frames=cache_frames,
                                         autocast=autocast_name(cfg, next(model.parameters()).device))
        for window_index, window in enumerate(frame_windows(iter(source), cfg.TEST.WINDOW_SIZE)):  # pass 1
            for offset, frame in enumerate(window):
                check_frame(frame, window_index * cfg.TEST.WINDOW_SIZE + offset, (height, width), name)
            model.encode_frames(state, window)
        selection = model.select_tracks(state, max_num=cfg.TEST.MAX_NUM, combine=cfg.TEST.OFFLINE_SCORE)
        segmentations = _decode_entries(model, source, state, selection, decode_window, frame_callback,
                                        exclusive=bool(cfg.TEST.EXCLUSIVE_MASKS))
    finally:
        model.train(was_training)
    vid = video_id if video_id is not None else getattr(source, "name", "video")
    entries = [
        {"video_id": vid,
         "category_id": int(category_ids[int(lab)]) if category_ids is not None else int(lab) + 1,
         "score": float(score), "segmentations": segs, "track_id": int(track)}  # -> entry_track_ids
        for score, lab, segs, track in zip(selection.scores.tolist(), selection.labels.tolist(), segmentations,
                                           selection.track_ids.tolist())
    ]
    entries = soft_suppress_duplicates(entries, selection.track_ids.tolist(), float(cfg.TEST.TRACK_NMS_IOU))
    return VideoResult(video_id=vid, num_frames=state.num_frames, height=height, width=width, entries=entries,
                       truncated=bool(getattr(source, "truncated", False)), error=getattr(source, "error", None))


def _decode_entries(model, source, state: OfflineState, selection: OfflineSelection, decode_window: int,
                    frame_callback: Callable[[FrameResult], None] | None, *,
                    exclusive: bool = False) -> list[list[dict | None]]:
    """Pass 2: the k selected entries' masks window by window, each window RLE-encoded in one batch.

    Returns k lists of T RLEs, None where the entry's track held no slot.
    """
    k, num_frames = len(selection.scores), state.num_frames
    segmentations: list[list[dict | None]] = [[] for _ in range(k)]
    present = selection.present.numpy()  # (T, k)
    best_entry = first_entry_per_track(selection.track_ids)  # entries are sorted by score: the first is the best
    reread = frame_callback is not None or len(state.feature_cache) < num_frames
    frames = frame_windows(iter(source), decode_window, limit=num_frames) if reread else None
    for start in range(0, num_frames, decode_window):
        stop = min(start + decode_window, num_frames)
        window_frames = next(frames, None) if frames is not None else None
        if frames is not None and (window_frames is None or len(window_frames) != stop - start):
            raise SpvisError(f"offline inference: {getattr(source, 'name', 'source')} gave fewer frames on the "
                             f"second read than on the first ({num_frames}); cannot decode masks")
        masks = model.decode_masks(state, selection, start, stop, window_frames,
                                   exclusive=exclusive).cpu().numpy()  # (k, Tw, W, H)
        rles = encode_column_major(masks.reshape(-1, *masks.shape[2:]))  # one batch: entry-major, then frame
        for i in range(k):
            segmentations[i].extend(rles[i * (stop - start) + t] if present[start + t, i] else None
                                    for t in range(stop - start))
        if frame_callback is not None:
            visible = masks.reshape(k, stop - start, -1).any(axis=2)  # (k, Tw)
            for t in range(stop - start):
                shown = best_entry & present[start + t] & visible[:, t]
                frame_callback(FrameResult(
                    frame_index=start + t, track_ids=selection.track_ids.numpy()[shown].astype(np.int64),
                    labels=selection.labels.numpy()[shown].astype(np.int64),
                    scores=selection.scores.numpy()[shown].astype(np.float32),
                    masks=np.ascontiguousarray(masks[shown, t].transpose(0, 2, 1)), frame=window_frames[t]))
    return segmentations


def first_entry_per_track(track_ids: torch.Tensor) -> np.ndarray:
    """bool (k,): entry i is the first (highest-scoring) entry of its track among entries sorted by score."""
    seen: set[int] = set()
    first = np.zeros(len(track_ids), dtype=bool)
    for i, track in enumerate(track_ids.tolist()):
        if track not in seen:
            seen.add(track)
            first[i] = True
    return first
