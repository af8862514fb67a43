"""Offline inference with bounded memory: segmenter + tracker, the refiner over the whole video, windowed masks.

Pass 1 streams the frames once through the segmenter and the tracker and keeps only per-frame queries
(the tracker's instance embeddings and the frame memory, T x Q x C each), the running sum of the
tracker's class logits and, while a memory budget allows, the frames' mask features (float32, so the
cached and recomputed paths give identical masks). The
refiner then runs once over all queries, the top-k (query, class) pairs are chosen (reference §5) and
pass 2 decodes only those k masks window by window, recomputing the segmenter for frames whose mask
features were not cached (the source is read a second time), and encodes them to RLE at once. Memory
is therefore O(T x Q x C + budget), never O(T x mask size).

Identities are the tracker's track ids, not query slots: with the PGT lifecycle or clip association a
slot can hand one track over to another, so pass 1 records which track holds which slot on every frame,
and each track is refined, classified and decoded over the frames (and slots) it held. For the DVIS
tracker every slot holds one track for the whole video, which is exactly DVIS_offline's per-query rule.

Score and top-k rule (DVIS_offline, reference §5): per track and class, p = max(softmax(refiner logits
pooled over the track's frames), softmax(mean over those frames of the tracker logits)) without the
no-object column; top-k over the tracks x K table with k = TEST.MAX_NUM (10 for YouTube-VIS, 20 for OVIS),
so one track may appear with several classes in ``results.json``; score = p alone (no mask-quality
term); masks = refiner mask logits > 0 after resizing to the frame. Entries are sorted by descending
score. Per-frame results (overlays) show each track once, with its best entry's class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from spvis.data.rle import encode_mask
from spvis.engine.frame_result import FrameResult, VideoResult
from spvis.engine.precision import inference_autocast
from spvis.engine.track_rescoring import soft_suppress_duplicates
from spvis.engine.streaming import FramePreprocessor, check_frame, resized_shape
from spvis.errors import SpvisError
from spvis.modeling.postprocess import masks_to_original, vis_topk

_GB = 1024**3


@dataclass
class PreparedWindow:
    """A window of frames as the network sees them."""

    images: Tensor  # (Tw, 3, Hp, Wp) normalised, zero-padded
    image_size: tuple[int, int]  # (Hi, Wi) resized size before padding
    frames: list[np.ndarray]  # the original uint8 (H, W, 3) frames


@dataclass
class Pass1Result:
    """What pass 1 keeps: per-frame queries (small), the tracker's logit sum and the feature cache."""

    instance_embeds: Tensor  # (T, Q, C) tracker outputs (SIM-grounded when the refiner has SIM)
    frame_memory: Tensor  # (T, Q, C) tracker.frame_forward of the segmenter queries
    track_ids: Tensor  # (T, Q) int64 track held by each slot on each frame (-1 = none)
    tracker_logits: Tensor  # (T, Q, K+1) the tracker's per-frame logits (small: Q x K per frame)
    feature_cache: list[Tensor]  # mask features (Cm, h, w) float32 (exact) of frames 0 .. len-1
    num_frames: int
    image_size: tuple[int, int]
    padded_size: tuple[int, int]
    height: int
    width: int


def prepare_window(frames: list[np.ndarray], preprocess: FramePreprocessor) -> PreparedWindow:
    """uint8 RGB frames (H, W, 3) -> resized, normalised, padded batch, exactly as the online engine does."""
    images, sizes = zip(*(preprocess(frame) for frame in frames))
    return PreparedWindow(images=torch.cat(images), image_size=sizes[0], frames=frames)


def _windows(frames: Iterable[np.ndarray], size: int, limit: int | None = None) -> Iterator[list[np.ndarray]]:
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
    h, w = resized_shape(height, width, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    div = max(cfg.MODEL.SIZE_DIVISIBILITY, 1)
    return math.ceil(h / div) * div, math.ceil(w / div) * div


def mask_feature_bytes(cfg, height: int, width: int) -> int:
    """Bytes of one frame's float32 mask features (Cm x Hp/s x Wp/s) for a (height, width) video."""
    hp, wp = padded_input_size(cfg, height, width)
    stride = cfg.MODEL.PIXEL_DECODER.COMMON_STRIDE
    return cfg.MODEL.PIXEL_DECODER.MASK_DIM * math.ceil(hp / stride) * math.ceil(wp / stride) * 4


@torch.no_grad()
def run_pass1(model, frames: Iterable[np.ndarray], *, height: int, width: int, window_size: int,
              cache_frames: int, preprocess: FramePreprocessor, source_name: str = "<frames>") -> Pass1Result:
    """Segmenter + tracker frame by frame; keeps queries, the tracker logit sum and up to ``cache_frames`` features."""
    tracker, refiner = model.tracker, model.refiner
    state = None
    instance, memory, cache, track_ids, logits = [], [], [], [], []
    image_size = padded_size = None
    for window_index, window in enumerate(_windows(frames, window_size)):
        for offset, frame in enumerate(window):
            check_frame(frame, window_index * window_size + offset, (height, width), source_name)
        prepared = prepare_window(window, preprocess)
        image_size, padded_size = prepared.image_size, tuple(prepared.images.shape[-2:])
        seg = model.segment(prepared.images)
        embeds, features = seg["pred_embds"], seg["mask_features"]  # (Tw, Q, C), (Tw, Cm, h, w)
        memory.append(tracker.frame_forward(embeds.unsqueeze(0))[0].cpu())  # (Tw, Q, C)
        for t in range(embeds.shape[0]):
            out, state = tracker.step(embeds[t:t + 1], features[t:t + 1], state)
            grounded = refiner.ground_frame(out["pred_embds"], features[t:t + 1], out["pred_masks"])
            instance.append(grounded[0].cpu())  # (Q, C)
            logits.append(out["pred_logits"][0].float().cpu())  # (Q, K+1)
            track_ids.append(out["track_ids"][0].cpu())  # (Q,)
            if len(cache) < cache_frames:
                cache.append(features[t].to("cpu", torch.float32, copy=True))  # own storage, not a window view
        del seg, features
    if not instance:
        raise SpvisError("offline inference: the video has no readable frames")
    return Pass1Result(
        instance_embeds=torch.stack(instance), frame_memory=torch.cat(memory), track_ids=torch.stack(track_ids),
        tracker_logits=torch.stack(logits), feature_cache=cache, num_frames=len(instance), image_size=image_size,
        padded_size=padded_size, height=height, width=width,
    )


@dataclass
class VideoTracks:
    """The tracks of one video: which slot each held on each frame."""

    ids: list[int]  # track ids, ascending
    slots: Tensor  # (T, N) int64 slot of track n on frame t, -1 where it held none

    @classmethod
    def from_slot_ids(cls, track_ids: Tensor) -> "VideoTracks":
        """(T, Q) track id per slot and frame (-1 = free) -> the per-track slot table."""
        ids = sorted(int(i) for i in torch.unique(track_ids) if int(i) >= 0)
        column = {track: n for n, track in enumerate(ids)}
        slots = torch.full((track_ids.shape[0], len(ids)), -1, dtype=torch.int64)
        frames, held = torch.nonzero(track_ids >= 0, as_tuple=True)
        cols = torch.tensor([column[int(i)] for i in track_ids[frames, held]], dtype=torch.int64)
        slots[frames, cols] = held
        return cls(ids, slots)

    @property
    def present(self) -> Tensor:
        """(T, N) bool: track n held a slot on frame t."""
        return self.slots >= 0

    def gather(self, per_slot: Tensor) -> Tensor:
        """Per-slot values (T, Q, ...) -> per-track values (T, N, ...) (zeros where a track holds no slot)."""
        index = self.slots.clamp(min=0).to(per_slot.device)
        index = index.view(*index.shape, *([1] * (per_slot.dim() - 2))).expand(-1, -1, *per_slot.shape[2:])
        values = torch.gather(per_slot, 1, index)
        keep = self.present.to(per_slot.device).view(*self.slots.shape, *([1] * (per_slot.dim() - 2)))
        return values * keep.to(values.dtype)


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
    num_queries = cfg.MODEL.DECODER.NUM_QUERIES
    decode_window, cache_frames = plan_windows(cfg, height=height, width=width, num_queries=num_queries,
                                               max_memory_gb=budget, window_size=window_size)
    seg_window = cfg.TEST.WINDOW_SIZE  # pass-1 segmenter batch; window_size only sets the pass-2 decoding window
    device = next(model.parameters()).device
    preprocess = FramePreprocessor(cfg, device)
    name = str(getattr(source, "name", "<frames>"))
    was_training = model.training
    model.eval()
    try:
        with inference_autocast(cfg, device):
            segmentations, scores, labels, track_ids, first = _refine_and_decode(
                model, cfg, source, preprocess, height=height, width=width, seg_window=seg_window,
                cache_frames=cache_frames, decode_window=decode_window, frame_callback=frame_callback, name=name)
    finally:
        model.train(was_training)
    vid = video_id if video_id is not None else getattr(source, "name", "video")
    entries = [
        {"video_id": vid,
         "category_id": int(category_ids[int(lab)]) if category_ids is not None else int(lab) + 1,
         "score": float(score), "segmentations": segs, "track_id": int(track)}  # -> entry_track_ids
        for score, lab, segs, track in zip(scores.tolist(), labels.tolist(), segmentations, track_ids.tolist())
    ]
    entries = soft_suppress_duplicates(entries, track_ids.tolist(), float(cfg.TEST.TRACK_NMS_IOU))
    return VideoResult(video_id=vid, num_frames=first.num_frames, height=height, width=width, entries=entries,
                       truncated=bool(getattr(source, "truncated", False)), error=getattr(source, "error", None))


def _refine_and_decode(model, cfg, source, preprocess: FramePreprocessor, *, height: int, width: int,
                       seg_window: int, cache_frames: int, decode_window: int,
                       frame_callback: Callable[[FrameResult], None] | None, name: str):
    """Pass 1, the refiner over the whole video, the top-k choice and pass 2 -> (RLEs per entry, scores,
    labels, track ids, pass-1 result)."""
    device = next(model.parameters()).device
    first = run_pass1(model, iter(source), height=height, width=width, window_size=seg_window,
                      cache_frames=cache_frames, preprocess=preprocess, source_name=name)
    refined = model.refiner(first.instance_embeds.unsqueeze(0).to(device), first.frame_memory.unsqueeze(0).to(device))
    tracks = VideoTracks.from_slot_ids(first.track_ids)
    track_embeds = tracks.gather(refined["pred_embds"][0].cpu())  # (T, N, C)
    del refined
    present = tracks.present
    video_logits = model.refiner.pooled_logits(track_embeds.to(device), present.to(device)).float().cpu()
    counts = present.sum(0).clamp(min=1).unsqueeze(-1)  # (N, 1)
    tracker_logits = tracks.gather(first.tracker_logits).sum(0) / counts  # (N, K+1) mean over held frames
    scores, labels, rows = vis_topk(video_logits, cfg.TEST.MAX_NUM, aux_logits=tracker_logits,
                                    combine=cfg.TEST.OFFLINE_SCORE)
    order = scores.argsort(descending=True, stable=True)
    scores, labels, rows = scores[order], labels[order], rows[order]
    selected = track_embeds[:, rows].to(device)  # (T, k, C)
    selected_present = present[:, rows]  # (T, k)
    track_ids = torch.tensor(tracks.ids, dtype=torch.int64)[rows] if len(rows) else rows
    segmentations = run_pass2(model, source, first, selected, selected_present, preprocess,
                              decode_window=decode_window, frame_callback=frame_callback, scores=scores,
                              labels=labels, track_ids=track_ids)
    return segmentations, scores, labels, track_ids, first


def run_pass2(model, source, first: Pass1Result, selected: Tensor, selected_present: Tensor,
              preprocess: FramePreprocessor, *, decode_window: int,
              frame_callback: Callable[[FrameResult], None] | None, scores: Tensor, labels: Tensor,
              track_ids: Tensor) -> list[list[dict | None]]:
    """Decode the k selected entries' masks window by window and RLE-encode them.

    ``selected`` (T, k, C) refined embeddings per entry, ``selected_present`` (T, k) whether the entry's
    track held a slot on that frame (None in the results where not). Returns k lists of T RLEs or None.
    """
    device = selected.device
    k = selected.shape[1]
    segmentations: list[list[dict | None]] = [[] for _ in range(k)]
    present = selected_present.numpy()
    best_entry = first_entry_per_track(track_ids)  # entries are sorted by score: the first is the best
    reread = frame_callback is not None or len(first.feature_cache) < first.num_frames
    frames = _windows(iter(source), decode_window, limit=first.num_frames) if reread else None
    for start in range(0, first.num_frames, decode_window):
        stop = min(start + decode_window, first.num_frames)
        window_frames = next(frames, None) if frames is not None else None
        if frames is not None and (window_frames is None or len(window_frames) != stop - start):
            raise SpvisError(f"offline inference: {getattr(source, 'name', 'source')} gave fewer frames on the "
                             f"second read than on the first ({first.num_frames}); cannot decode masks")
        features = _window_features(model, preprocess, first, start, stop, window_frames)  # (Tw, Cm, h, w)
        logits = model.refiner.predict_masks(selected[start:stop].unsqueeze(0), features.unsqueeze(0).to(device))
        masks = masks_to_original(logits[0].transpose(0, 1), first.padded_size, first.image_size,
                                  (first.height, first.width)).cpu().numpy()  # (k, Tw, H, W) bool
        for i in range(k):
            segmentations[i].extend(encode_mask(masks[i, t]) if present[start + t, i] else None
                                    for t in range(stop - start))
        if frame_callback is not None:
            for t in range(stop - start):
                shown = best_entry & present[start + t] & masks[:, t].reshape(k, -1).any(axis=1)
                frame_callback(FrameResult(
                    frame_index=start + t, track_ids=track_ids.numpy()[shown].astype(np.int64),
                    labels=labels.numpy()[shown].astype(np.int64),
                    scores=scores.numpy()[shown].astype(np.float32), masks=masks[shown, t],
                    frame=window_frames[t]))
    return segmentations


def first_entry_per_track(track_ids: Tensor) -> np.ndarray:
    """bool (k,): entry i is the first (highest-scoring) entry of its track among entries sorted by score."""
    seen: set[int] = set()
    first = np.zeros(len(track_ids), dtype=bool)
    for i, track in enumerate(track_ids.tolist()):
        if track not in seen:
            seen.add(track)
            first[i] = True
    return first


def _window_features(model, preprocess: FramePreprocessor, first: Pass1Result, start: int, stop: int,
                     window_frames: list[np.ndarray] | None) -> Tensor:
    """Mask features (Tw, Cm, h, w) of frames [start, stop): from the cache, else recomputed."""
    cached = first.feature_cache
    if stop <= len(cached):
        return torch.stack(cached[start:stop])
    recomputed = model.segment(prepare_window(window_frames, preprocess).images)["mask_features"].float()
    if start < len(cached):  # a window straddling the cache end keeps the cached part bit-identical
        recomputed[: len(cached) - start] = torch.stack(cached[start:]).to(recomputed.device)
    return recomputed
