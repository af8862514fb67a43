"""Offline inference owned by the model: pass 1 over a video's frames, the refiner over the video, pass 2 per window.

``state = model.init_offline_state(cache_frames=n)``; ``model.encode_frames(state, frames)`` for consecutive windows
of the video (segmenter + tracker + the refiner's per-frame grounding; only per-frame queries, the tracker's logits,
the slots' track ids and up to ``n`` frames of mask features are kept, on the host); ``model.select_tracks(state,
max_num=, combine=)`` runs the refiner once over the whole video and picks the top-k (track, class) entries;
``model.decode_masks(state, selection, start, stop, frames)`` decodes those entries' masks for frames [start, stop)
at the video's resolution, recomputing the segmenter for frames whose features were not cached (``frames`` then
holds them). The engine (``spvis.engine.offline``) plans the memory budget, reads the source and writes results.

Identities are the tracker's track ids, not query slots: with the PGT lifecycle or clip association a slot can hand
one track over to another, so pass 1 records which track holds which slot on every frame, and each track is refined,
classified and decoded over the frames (and slots) it held. For the DVIS tracker every slot holds one track for the
whole video, which is exactly DVIS_offline's per-query rule.

Score and top-k rule (DVIS_offline, reference §5): per track and class, p = combine(softmax(refiner logits pooled
over the track's frames), softmax(mean over those frames of the tracker logits)) without the no-object column;
top-k over the tracks x K table with k = max_num, so one track may appear with several classes; entries sorted by
descending score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from spvis.errors import SpvisError
from spvis.modeling.inference.state import AUTOCAST_DTYPES, autocast_context
from spvis.modeling.postprocess import (class_probabilities, exclusive_masks, mask_logits_to_frame,
                                       masks_to_original, vis_topk)

ABSENT_LOGIT = -1.0e4  # mask logit of a track on a frame where it held no slot (sigmoid 0)


@dataclass
class OfflineState:
    """What pass 1 keeps of one video: small per-frame queries (T x Q x C) and at most ``cache_frames`` features."""

    cache_frames: int  # frames of mask features kept (float32, host) so pass 2 need not recompute them
    autocast: str = ""  # '' | bf16 | fp16
    frame_size: tuple[int, int] | None = None  # (H, W)
    image_size: tuple[int, int] | None = None  # (h, w) resized input before padding
    padded_size: tuple[int, int] | None = None  # (Hp, Wp) network input
    num_frames: int = 0
    tracker_state: object = None
    instance_embeds: list[Tensor] = field(default_factory=list)  # per window (Tw, Q, C): grounded tracker outputs
    frame_memory: list[Tensor] = field(default_factory=list)  # per window (Tw, Q, C): tracker.frame_forward
    track_ids: list[Tensor] = field(default_factory=list)  # per window (Tw, Q) int64 track held by each slot
    tracker_logits: list[Tensor] = field(default_factory=list)  # per window (Tw, Q, K+1) float32
    feature_cache: list[Tensor] = field(default_factory=list)  # per frame (Cm, h, w) float32, frames 0 .. n-1


@dataclass
class VideoTracks:
    """The tracks of one video: which slot each held on each frame."""

    ids: list[int]  # track ids, ascending
    slots: Tensor  # (T, N) int64 slot of track n on frame t, -1 where it held none

    @classmethod
    def from_slot_ids(cls, track_ids: Tensor) -> "VideoTracks":
        """(T, Q) track id per slot and frame (-1 = free), on the host -> the per-track slot table."""
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


@dataclass
class OfflineSegments:
    """Every track of a video with its video-level class probabilities (VPS / VSS offline)."""

    probs: Tensor  # (N, K+1) float32, host: combined class probabilities, no-object last
    track_ids: Tensor  # (N,) int64, host
    embeds: Tensor  # (T, N, C) refined embeddings, on the device
    present: Tensor  # (T, N) bool, host: the track held a slot on that frame


@dataclass
class OfflineSelection:
    """The top-k (track, class) entries of a video, sorted by descending score."""

    scores: Tensor  # (k,) float32, host
    labels: Tensor  # (k,) int64 contiguous class ids, host
    track_ids: Tensor  # (k,) int64, host
    embeds: Tensor  # (T, k, C) refined embeddings of each entry's track, on the device
    present: Tensor  # (T, k) bool, host: the entry's track held a slot on that frame


class OfflineInferenceMixin:
    """Offline entry points for a model with ``preprocessor``, ``segment(images)``, ``tracker`` and ``refiner``."""

    def init_offline_state(self, *, cache_frames: int, autocast: str = "") -> OfflineState:
        """A fresh pass-1 state; ``cache_frames`` bounds the cached mask features (engine.offline.plan_windows)."""
        if getattr(self, "refiner", None) is None:
            raise SpvisError("offline mode needs a model with a refiner (set MODEL.REFINER.ENABLED True)")
        if autocast not in AUTOCAST_DTYPES:
            raise SpvisError(f"unknown autocast precision {autocast!r} (choose one of {sorted(AUTOCAST_DTYPES)})")
        return OfflineState(cache_frames=int(cache_frames), autocast=autocast)

    @torch.no_grad()
    def encode_frames(self, state: OfflineState, frames: list[np.ndarray]) -> None:
        """Pass 1 over the next window of uint8 RGB frames (H, W, 3): the segmenter on the window at once, then the
        tracker frame by frame; one host copy per kept quantity and window."""
        prepared = self.preprocessor(np.stack(frames))  # (Tw, 3, Hp, Wp)
        state.frame_size, state.image_size, state.padded_size = (prepared.frame_size, prepared.image_size,
                                                                 prepared.padded_size)
        with autocast_context(state.autocast, prepared.images.device):
            seg = self.segment(prepared.images)
            embeds, features = seg["pred_embds"], seg["mask_features"]  # (Tw, Q, C), (Tw, Cm, h, w)
            state.frame_memory.append(self.tracker.frame_forward(embeds.unsqueeze(0))[0].cpu())  # (Tw, Q, C)
            instance, logits, track_ids = [], [], []
            # (Tw, Q, h, w), (Tw, Q, K+1) for the mask-overlap alignment (a segmenter may give only embeddings)
            seg_masks, seg_logits = seg.get("pred_masks"), seg.get("pred_logits")
            for t in range(embeds.shape[0]):
                out, state.tracker_state = self.tracker.step(
                    embeds[t:t + 1], features[t:t + 1], state.tracker_state,
                    frame_masks=None if seg_masks is None else seg_masks[t:t + 1],
                    frame_logits=None if seg_logits is None else seg_logits[t:t + 1])
                instance.append(self.refiner.ground_frame(out["pred_embds"], features[t:t + 1], out["pred_masks"])[0])
                logits.append(out["pred_logits"][0].float())
                track_ids.append(out["track_ids"][0])
            state.instance_embeds.append(torch.stack(instance).cpu())
            state.tracker_logits.append(torch.stack(logits).cpu())
            state.track_ids.append(torch.stack(track_ids).cpu())
            room = max(0, state.cache_frames - len(state.feature_cache))
            if room:  # own storage, not a view of the window's features
                state.feature_cache.extend(features[:room].to("cpu", torch.float32, copy=True).unbind(0))
        state.num_frames += len(frames)

    def _refine_video(self, state: OfflineState) -> tuple[VideoTracks, Tensor, Tensor, Tensor]:
        """The refiner once over the whole video: (tracks, refined embeddings (T, N, C) host, refiner logits pooled
        over each track's frames (N, K+1) host, tracker logits averaged over them (N, K+1) host)."""
        if state.num_frames == 0:
            raise SpvisError("offline inference: the video has no readable frames")
        device = self.preprocessor.pixel_mean.device
        with autocast_context(state.autocast, device):
            refined = self.refiner(torch.cat(state.instance_embeds).unsqueeze(0).to(device),
                                   torch.cat(state.frame_memory).unsqueeze(0).to(device))
            tracks = VideoTracks.from_slot_ids(torch.cat(state.track_ids))
            track_embeds = tracks.gather(refined["pred_embds"][0].cpu())  # (T, N, C)
            del refined
            present = tracks.present
            video_logits = self.refiner.pooled_logits(track_embeds.to(device), present.to(device)).float().cpu()
        counts = present.sum(0).clamp(min=1).unsqueeze(-1)  # (N, 1)
        tracker_logits = tracks.gather(torch.cat(state.tracker_logits)).sum(0) / counts  # (N, K+1) mean
        return tracks, track_embeds, video_logits, tracker_logits

    @torch.no_grad()
    def video_segments(self, state: OfflineState, *, combine: str = "max") -> OfflineSegments:
        """Every track of the video with its class probabilities, no-object column included (VPS / VSS offline:
        DVIS_offline's element-wise max of the refiner's and the tracker's softmax with ``combine`` max)."""
        tracks, track_embeds, video_logits, tracker_logits = self._refine_video(state)
        probs = class_probabilities(video_logits, tracker_logits, combine, no_object=True)  # (N, K+1)
        return OfflineSegments(probs=probs, track_ids=torch.tensor(tracks.ids, dtype=torch.int64),
                               embeds=track_embeds.to(self.preprocessor.pixel_mean.device), present=tracks.present)

    @torch.no_grad()
    def segment_mask_logits(self, state: OfflineState, segments: OfflineSegments, rows: Tensor, start: int,
                            stop: int, features: Tensor) -> Tensor:
        """float32 (n, Tw, H, W) mask logits at the video's resolution of the tracks ``rows`` (n,) on frames
        [start, stop), whose mask features (Tw, Cm, h, w) come from ``window_features``; ``ABSENT_LOGIT`` on frames
        where a track held no slot."""
        device = segments.embeds.device
        with autocast_context(state.autocast, device):
            logits = self.refiner.predict_masks(segments.embeds[start:stop, rows.to(device)].unsqueeze(0),
                                                features.unsqueeze(0).to(device))  # (1, Tw, n, h, w)
        logits = logits[0].transpose(0, 1)  # (n, Tw, h, w)
        n, tw = logits.shape[:2]
        frames = mask_logits_to_frame(logits.reshape(n * tw, *logits.shape[2:]), state.padded_size,
                                      state.image_size, state.frame_size).view(n, tw, *state.frame_size)
        absent = ~segments.present[start:stop, rows].T.to(device)  # (n, Tw)
        return frames.masked_fill(absent[:, :, None, None], ABSENT_LOGIT)

    @torch.no_grad()
    def window_features(self, state: OfflineState, start: int, stop: int,
                        frames: list[np.ndarray] | None = None) -> Tensor:
        """Mask features (Tw, Cm, h, w) of frames [start, stop): from the cache, else recomputed from ``frames``."""
        with autocast_context(state.autocast, self.preprocessor.pixel_mean.device):
            return self._window_features(state, start, stop, frames)

    @torch.no_grad()
    def select_tracks(self, state: OfflineState, *, max_num: int, combine: str = "max") -> OfflineSelection:
        """The refiner over the whole video, then the top-k (track, class) entries (module docstring)."""
        device = self.preprocessor.pixel_mean.device
        tracks, track_embeds, video_logits, tracker_logits = self._refine_video(state)
        present = tracks.present
        with autocast_context(state.autocast, device):
            scores, labels, rows = vis_topk(video_logits, max_num, aux_logits=tracker_logits, combine=combine)
        order = scores.argsort(descending=True, stable=True)
        scores, labels, rows = scores[order], labels[order], rows[order]
        track_ids = torch.tensor(tracks.ids, dtype=torch.int64)[rows] if len(rows) else rows
        return OfflineSelection(scores=scores, labels=labels, track_ids=track_ids,
                                embeds=track_embeds[:, rows].to(device), present=present[:, rows])

    @torch.no_grad()
    def decode_masks(self, state: OfflineState, selection: OfflineSelection, start: int, stop: int,
                     frames: list[np.ndarray] | None = None, *, exclusive: bool = False) -> Tensor:
        """Masks of the selected entries on frames [start, stop) at the video's resolution: bool (k, Tw, W, H)
        column-major (pycocotools' layout) on the device. ``frames`` (those frames) is needed unless every frame's
        features are cached. ``exclusive`` (TEST.EXCLUSIVE_MASKS): a pixel several tracks claim stays in the one with
        the highest entry score x mask probability (all entries of that track keep it; absent tracks claim none)."""
        with autocast_context(state.autocast, selection.embeds.device):
            features = self._window_features(state, start, stop, frames)  # (Tw, Cm, h, w)
            logits = self.refiner.predict_masks(selection.embeds[start:stop].unsqueeze(0),
                                                features.unsqueeze(0).to(selection.embeds.device))  # (1, Tw, k, h, w)
            logits = logits[0].transpose(0, 1)  # (k, Tw, h, w)
            if exclusive and len(logits):
                k, tw = logits.shape[:2]
                frame_logits = mask_logits_to_frame(logits.reshape(k * tw, *logits.shape[2:]), state.padded_size,
                                                    state.image_size, state.frame_size).view(k, tw, *state.frame_size)
                masks = exclusive_masks(frame_logits, selection.scores.to(frame_logits.device),
                                        owners=selection.track_ids,
                                        competing=selection.present[start:stop].T.to(frame_logits.device))
            else:
                masks = masks_to_original(logits, state.padded_size, state.image_size, state.frame_size)  # (k, Tw, H, W)
        return masks.transpose(2, 3).contiguous()

    def _window_features(self, state: OfflineState, start: int, stop: int,
                         frames: list[np.ndarray] | None) -> Tensor:
        """Mask features (Tw, Cm, h, w) of frames [start, stop): from the cache, else recomputed."""
        cached = state.feature_cache
        if stop <= len(cached):
            return torch.stack(cached[start:stop])
        if frames is None or len(frames) != stop - start:
            raise SpvisError(f"offline inference: frames {start}-{stop - 1} are not cached; pass them to decode")
        recomputed = self.segment(self.preprocessor(np.stack(frames)).images)["mask_features"].float()
        if start < len(cached):  # a window straddling the cache end keeps the cached part bit-identical
            recomputed[: len(cached) - start] = torch.stack(cached[start:]).to(recomputed.device)
        return recomputed

