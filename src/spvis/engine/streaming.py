"""Streaming online inference: segmenter + tracker frame by frame, flat memory, RLE as soon as made.

``OnlineTracker(model, cfg).stream(frames)`` yields one FrameResult per frame; afterwards
``video_result(video_id)`` gives the per-video entries with the official top-k rule. Per frame only the
RLEs of the tracks and per-track logit sums are kept (spvis.engine.video_results), so memory does not
grow with video length beyond those RLEs.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from spvis.data.rle import rle_area
from spvis.engine.frame_result import FrameResult, VideoResult
from spvis.engine.precision import inference_autocast
from spvis.engine.video_results import TrackAccumulator, encode_frame_masks
from spvis.errors import DataFormatError, SpvisError
from spvis.modeling.minvis import minvis_step
from spvis.modeling.pgt.snap import snap_to_segmenter
from spvis.modeling.postprocess import masks_to_original


def check_frame(frame: np.ndarray, index: int, expected: tuple[int, int] | None, source: str) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = getattr(frame, "shape", type(frame).__name__)
        raise DataFormatError(source, f"expected a uint8 (H, W, 3) RGB frame, got {got}", entry=f"frame {index}")
    if expected is not None and frame.shape[:2] != expected:
        raise DataFormatError(source, f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the first "
                              f"frame's {expected[1]}x{expected[0]}", entry=f"frame {index}", field="size")


# Slots upsampled to full resolution at once: bounds the per-frame float buffer to MASK_CHUNK x H x W x 4 bytes
# (100 slots of a 1080p frame at once would be ~830 MB).
MASK_CHUNK = 16


class OnlineTracker:
    """Runs a model (``segment`` + ``tracker``) over a stream of frames, one frame at a time."""

    def __init__(self, model: torch.nn.Module, cfg, *, score_thr: float = 0.5, keep_frames: bool = False,
                 association: str | None = None):
        self.association = association or cfg.TEST.TRACKER
        if self.association not in ("learned", "minvis"):
            raise SpvisError(f"unknown association {self.association!r} (choose learned or minvis)")
        if self.association == "learned" and getattr(model, "tracker", None) is None:
            raise SpvisError("online inference with the learned tracker needs a tracker: these weights/config have "
                             "MODEL.TRACKER.ENABLED False (use --tracker minvis for a segmenter alone)")
        self.model = model
        self.cfg = cfg
        self.score_thr = score_thr
        self.keep_frames = keep_frames
        self.device = next(model.parameters()).device
        self.accumulator = TrackAccumulator()
        self.frame_size: tuple[int, int] | None = None

    @torch.no_grad()
    def stream(self, frames: Iterable[np.ndarray], *, source: str = "<frames>") -> Iterator[FrameResult]:
        """Yield a FrameResult per frame; resets the per-video summaries first. The model runs in eval mode
        and gets its previous mode back when the stream ends or is closed (e.g. an eval hook in training)."""
        was_training = self.model.training
        self.model.eval()
        self.accumulator = TrackAccumulator()
        self.frame_size = None
        state = None
        try:
            for index, frame in enumerate(frames):
                check_frame(frame, index, self.frame_size, source)
                self.frame_size = frame.shape[:2]
                prepared = self.model.preprocessor(frame)  # (1, 3, Hp, Wp): the model's one preprocessor
                with inference_autocast(self.cfg, self.device):
                    seg = self.model.segment(prepared.images)
                    if self.association == "minvis":
                        out, state = minvis_step(seg, state)
                    else:
                        out, state = self.model.tracker.step(seg["pred_embds"], seg["mask_features"], state)
                        out = snap_to_segmenter(out, seg, float(self.cfg.TEST.SNAP_IOU))
                yield self._frame_result(index, frame, prepared.padded_size, prepared.image_size, out)
        finally:
            self.model.train(was_training)

    def _frame_result(self, index: int, frame: np.ndarray, padded: tuple[int, int], image_size: tuple[int, int],
                      out: dict) -> FrameResult:
        track_ids = out["track_ids"][0]  # (Q,)
        held = torch.nonzero(track_ids >= 0).flatten()
        logits = out["pred_logits"][0, held].float()  # (N, K+1)
        ids_np = track_ids[held].cpu().numpy().astype(np.int64)
        scores, labels = logits.softmax(-1)[:, :-1].max(-1)
        wanted = (scores >= self.score_thr).cpu().numpy()
        rles: list[dict] = []
        shown_masks: list[np.ndarray] = []
        shown = np.zeros(len(ids_np), dtype=bool)
        for start in range(0, len(ids_np), MASK_CHUNK):
            chunk = masks_to_original(out["pred_masks"][0, held[start:start + MASK_CHUNK]].float(), tuple(padded),
                                      image_size, self.frame_size).cpu().numpy()  # (n, H, W) bool
            chunk_rles = encode_frame_masks(chunk)
            for offset, rle in enumerate(chunk_rles):
                i = start + offset
                if wanted[i] and rle_area(rle) > 0:  # area counts runs: no full-res scan
                    shown[i] = True
                    shown_masks.append(chunk[offset])
            rles.extend(chunk_rles)
        self.accumulator.add_frame(index, ids_np, logits.cpu().numpy(), rles)
        height, width = self.frame_size
        return FrameResult(
            frame_index=index,
            track_ids=ids_np[shown],
            labels=labels.cpu().numpy().astype(np.int64)[shown],
            scores=scores.cpu().numpy().astype(np.float32)[shown],
            masks=np.stack(shown_masks) if shown_masks else np.zeros((0, height, width), dtype=bool),
            frame=frame if self.keep_frames else None,
        )

    def video_result(self, video_id: int | str, *, category_ids: Sequence[int] | None = None,
                     score_thr: float = 0.0, truncated: bool = False, error: str | None = None) -> VideoResult:
        """Per-video entries of the last streamed video (official top-k, TEST.MAX_NUM)."""
        if self.frame_size is None:
            raise SpvisError(f"{video_id}: no frames were read, nothing to report")
        entries = self.accumulator.entries(video_id, max_num=self.cfg.TEST.MAX_NUM, category_ids=category_ids,
                                           score_thr=score_thr, nms_iou=float(self.cfg.TEST.TRACK_NMS_IOU))
        height, width = self.frame_size
        return VideoResult(video_id, self.accumulator.num_frames, height, width, entries, truncated, error)
