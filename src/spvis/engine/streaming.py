"""Streaming online inference: feed frames to the model one at a time, write FrameResults and per-video entries.

``OnlineTracker(model, cfg).stream(frames)`` yields one FrameResult per frame; afterwards ``video_result(video_id)``
gives the per-video entries with the official top-k rule. The model does the work (``SPVISModel.init_state`` /
``track_frame``: preprocessing, segmenter, association, masks at the frame's resolution, all on its device); this
engine checks the frames, brings each tracked frame to the host in one transfer, files the tracks' RLEs (encoded on
a worker thread, ``spvis.engine.video_results``) and keeps only those and per-track logit sums, so memory does not
grow with video length beyond the RLEs.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from spvis.engine.frame_result import FrameResult, VideoResult
from spvis.engine.precision import autocast_name
from spvis.engine.video_results import RLEEncoder, TrackAccumulator
from spvis.errors import DataFormatError, SpvisError
from spvis.modeling.inference import HostFrame, OnlineState
from spvis.modeling.pgt.query_tracker import QueryTrackerOptions


def check_frame(frame: np.ndarray, index: int, expected: tuple[int, int] | None, source: str) -> None:
    """DataFormatError naming ``source`` and the frame unless ``frame`` is uint8 (H, W, 3) of the ``expected`` size."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = getattr(frame, "shape", type(frame).__name__)
        raise DataFormatError(source, f"expected a uint8 (H, W, 3) RGB frame, got {got}", entry=f"frame {index}")
    if expected is not None and frame.shape[:2] != expected:
        raise DataFormatError(source, f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the first "
                              f"frame's {expected[1]}x{expected[0]}", entry=f"frame {index}", field="size")


def online_state_options(model: torch.nn.Module, cfg, association: str | None = None) -> dict:
    """``model.init_state``'s keyword arguments from the config: TEST.TRACKER (or ``association``), TEST.SNAP_IOU,
    TEST.SNAP_UNMATCHED, TEST.HALF, TEST.EXCLUSIVE_MASKS, TEST.MINVIS_MASK_WEIGHT and MODEL.TRACKER.PGT
    (TEST.TRACKER=pgt)."""
    # the model's own device (SPVISModel, or an exported graph model with no parameters), else its parameters'
    device = getattr(model, "device", None) or next(model.parameters()).device
    association = association or cfg.TEST.TRACKER
    pgt_options = QueryTrackerOptions.from_config(cfg) if association == "pgt" else None
    return {"association": association, "snap_iou": float(cfg.TEST.SNAP_IOU),
            "snap_hide": cfg.TEST.SNAP_UNMATCHED == "hide", "autocast": autocast_name(cfg, device),
            "pgt_options": pgt_options, "exclusive_masks": bool(cfg.TEST.EXCLUSIVE_MASKS),
            "minvis_mask_weight": float(cfg.TEST.MINVIS_MASK_WEIGHT),
            "minvis_motion": bool(cfg.MODEL.TRACKER.ALIGN_MOTION)}


def online_state(model: torch.nn.Module, cfg, association: str | None = None) -> OnlineState:
    """The model's online state for one video (``online_state_options``)."""
    return model.init_state(**online_state_options(model, cfg, association))


def frame_result(host: HostFrame, score_thr: float, frame: np.ndarray | None = None) -> FrameResult:
    """The frame's tracks scoring >= ``score_thr`` with a non-empty mask, in slot order."""
    shown = (host.track_ids >= 0) & (host.scores >= score_thr) & host.nonempty
    return FrameResult(frame_index=host.frame_index, track_ids=host.track_ids[shown], labels=host.labels[shown],
                       scores=host.scores[shown], masks=host.masks(shown), frame=frame)


class OnlineTracker:
    """Runs a model over a stream of frames, one frame at a time (the model's ``init_state`` / ``track_frame``)."""

    def __init__(self, model: torch.nn.Module, cfg, *, score_thr: float = 0.5, keep_frames: bool = False,
                 association: str | None = None):
        self.model = model
        self.cfg = cfg
        self.association = association or cfg.TEST.TRACKER
        online_state(model, cfg, self.association)  # unknown association / no tracker: an error before any frame
        self.score_thr = score_thr
        self.keep_frames = keep_frames
        self.accumulator = TrackAccumulator()
        self.frame_size: tuple[int, int] | None = None

    def stream(self, frames: Iterable[np.ndarray], *, source: str = "<frames>") -> Iterator[FrameResult]:
        """Yield a FrameResult per frame; resets the per-video summaries first. The model runs in eval mode
        and gets its previous mode back when the stream ends or is closed (e.g. an eval hook in training)."""
        was_training = self.model.training
        self.model.eval()
        self.accumulator = TrackAccumulator()
        self.frame_size = None
        state = online_state(self.model, self.cfg, self.association)
        encoder = RLEEncoder()
        try:
            for index, frame in enumerate(frames):
                check_frame(frame, index, self.frame_size, source)
                self.frame_size = frame.shape[:2]
                host = self.model.track_frame(state, frame).to_host()  # the frame's one transfer
                held = host.track_ids >= 0
                self.accumulator.add_frame(index, host.track_ids[held], host.logits[held],
                                           encoder.submit(host.column_major_masks(held)))
                yield frame_result(host, self.score_thr, frame if self.keep_frames else None)
        finally:
            encoder.close()
            self.model.train(was_training)

    def video_result(self, video_id: int | str, *, category_ids: Sequence[int] | None = None,
                     score_thr: float = 0.0, truncated: bool = False, error: str | None = None) -> VideoResult:
        """Per-video entries of the last streamed video (official top-k, TEST.MAX_NUM)."""
        if self.frame_size is None:
            raise SpvisError(f"{video_id}: no frames were read, nothing to report")
        entries = self.accumulator.entries(video_id, max_num=self.cfg.TEST.MAX_NUM, category_ids=category_ids,
                                           score_thr=score_thr, nms_iou=float(self.cfg.TEST.TRACK_NMS_IOU))
        height, width = self.frame_size
        return VideoResult(video_id, self.accumulator.num_frames, height, width, entries, truncated, error)
