"""Online inference owned by the model: ``state = model.init_state()``, ``model.track_frame(state, frame)``.

The model (detectron2's meta-architecture habit) preprocesses the frame, runs the segmenter, associates its queries
with the video's tracks (the learned tracker, then TEST.SNAP_IOU's snap to the segmenter; or MinVIS matching) and
returns a ``TrackedFrame`` of device tensors at the frame's resolution. The state is explicit (SAM 2's habit): one
model serves many videos at once, and a state can be saved and restored (``OnlineState.state_dict``).

Host transfers per frame: the alignment costs (one, from the second frame on; MinVIS the same), one more with
TEST.SNAP_IOU > 0 (the snap IoUs), the lifecycle's per-slot values with PGT track books; the frame's results are
then one more (``TrackedFrame.to_host``). The DVIS tracker (no snap, no PGT track books) makes two, with or
without the mask-overlap alignment; the built-in model's PGT lifecycle adds its one. TEST.TRACKER=pgt
(``spvis.modeling.pgt.query_tracker``) emits only the tracks seen on the frame and still syncs per detection.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import Tensor

from spvis.errors import SpvisError
from spvis.modeling.inference.emission import TrackedFrame, emit_frame
from spvis.modeling.inference.state import ASSOCIATIONS, AUTOCAST_DTYPES, OnlineState, autocast_context
from spvis.modeling.minvis import minvis_step
from spvis.modeling.pgt.query_tracker import QueryTracker, QueryTrackerOptions
from spvis.modeling.pgt.snap import snap_to_segmenter
from spvis.modeling.preprocessing import PreparedFrames


class OnlineInferenceMixin:
    """``init_state`` / ``track_frame`` for a model with ``preprocessor`` (spvis.modeling.preprocessing.Preprocessor),
    ``segment(images) -> dict`` and ``tracker`` (None for a segmenter alone: MinVIS association only)."""

    def init_state(self, *, association: str = "learned", snap_iou: float = 0.0, snap_hide: bool = False,
                   autocast: str = "", pgt_options: QueryTrackerOptions | None = None,
                   exclusive_masks: bool = False, minvis_mask_weight: float = 0.0,
                   minvis_motion: bool = False) -> OnlineState:
        """A fresh state for one video. ``association``: learned | minvis | pgt; ``snap_iou``: TEST.SNAP_IOU (learned
        only), ``snap_hide``: TEST.SNAP_UNMATCHED == hide; ``autocast``: '' | bf16 | fp16, the precision the network
        runs in (``engine.precision``); ``pgt_options``: the pgt association's (MODEL.TRACKER.PGT; defaults when
        None); ``exclusive_masks``: TEST.EXCLUSIVE_MASKS (``emit_frame``); ``minvis_mask_weight``:
        TEST.MINVIS_MASK_WEIGHT and ``minvis_motion`` MODEL.TRACKER.ALIGN_MOTION (``minvis_step``)."""
        if association not in ASSOCIATIONS:
            raise SpvisError(f"unknown association {association!r} (choose learned, minvis or pgt)")
        if association == "learned" and getattr(self, "tracker", None) is None:
            raise SpvisError("online inference with the learned tracker needs a tracker: these weights/config have "
                             "MODEL.TRACKER.ENABLED False (use --tracker minvis for a segmenter alone)")
        if autocast not in AUTOCAST_DTYPES:
            raise SpvisError(f"unknown autocast precision {autocast!r} (choose one of {sorted(AUTOCAST_DTYPES)})")
        if association == "pgt" and pgt_options is None:
            pgt_options = QueryTrackerOptions()
        return OnlineState(association=association, snap_iou=float(snap_iou), snap_hide=bool(snap_hide),
                           autocast=autocast, pgt_options=pgt_options, exclusive_masks=bool(exclusive_masks),
                           minvis_mask_weight=float(minvis_mask_weight), minvis_motion=bool(minvis_motion))

    @torch.no_grad()
    def track_frame(self, state: OnlineState, frame: np.ndarray | Tensor) -> TrackedFrame:
        """Track one uint8 RGB frame (H, W, 3) and advance ``state``; the frame's tracks stay on the device.

        Frames of one video share their size (a different one is an SpvisError). Run the model in eval mode.
        """
        prepared, out = self._segment_and_associate(state, frame)
        tracked = emit_frame(out["track_ids"][0], out["pred_logits"][0], out["pred_masks"][0], prepared,
                             state.frame_index, exclusive=state.exclusive_masks)
        state.frame_index += 1
        return tracked

    def _segment_and_associate(self, state: OnlineState, frame: np.ndarray | Tensor) -> tuple[PreparedFrames, dict]:
        """Preprocess one frame (its size must be the video's), segment it and associate it with the video's
        tracks (``_associate``); does not advance ``state.frame_index``. Shared by tracking and panoptic parsing."""
        prepared = self.preprocessor(frame)  # (1, 3, Hp, Wp) on the device
        if state.frame_size is None:
            state.frame_size = prepared.frame_size
        elif prepared.frame_size != tuple(state.frame_size):
            raise SpvisError(f"frame {state.frame_index} is {prepared.frame_size[1]}x{prepared.frame_size[0]}, the "
                             f"video's first frame {state.frame_size[1]}x{state.frame_size[0]}")
        with autocast_context(state.autocast, prepared.images.device):
            out = self._associate(state, self.segment(prepared.images))
        return prepared, out

    def _associate(self, state: OnlineState, seg: dict) -> dict:
        """Segmenter output -> tracks in slot order ({pred_logits (B, Q, K+1), pred_masks (B, Q, h, w), track_ids
        (B, Q), ...}); advances ``state.association_state``."""
        if state.association == "minvis":
            out, state.association_state = minvis_step(seg, state.association_state, state.minvis_mask_weight,
                                                       state.minvis_motion)
            return out
        if state.association == "pgt":  # tracks over the segmenter's confident queries: M tracks, not Q slots
            out, state.association_state = QueryTracker(state.pgt_options).step(seg, state.association_state)
            return out
        out, state.association_state = self.tracker.step(seg["pred_embds"], seg["mask_features"],
                                                         state.association_state, frame_masks=seg.get("pred_masks"),
                                                         frame_logits=seg.get("pred_logits"))
        return snap_to_segmenter(out, seg, state.snap_iou, hide_unmatched=state.snap_hide)

