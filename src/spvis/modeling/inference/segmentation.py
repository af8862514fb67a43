"""Online video panoptic (VPS) and video semantic (VSS) inference owned by the model.

``state = model.init_segmentation_state(task="vps", rules=PanopticRules(num_things=...))``, then
``model.parse_frame(state, frame)`` per frame. The segmenter's queries cover things and stuff; the association
(learned tracker, MinVIS or PGT) is the VIS path's (``OnlineInferenceMixin._associate``), unchanged. Each track's
class logits are averaged over its frames so far (``RunningClassLogits``: DVIS averages over the whole video, which
a stream knows only at its end), then ``spvis.modeling.panoptic``'s rules run on the frame at its own resolution.
Memory is flat in the video length: the state holds the tracker's bounded state and one logit row per track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from spvis.errors import SpvisError
from spvis.modeling.inference.emission import MASK_CHUNK
from spvis.modeling.inference.state import OnlineState
from spvis.modeling.panoptic import (PanopticAssignment, PanopticRules, RunningClassLogits, assign_panoptic,
                                     keep_queries, semantic_class_scores)
from spvis.modeling.postprocess import mask_logits_to_frame

TASKS = ("vps", "vss")


@dataclass
class SegmentationState:
    """One video's VPS / VSS inference state: the online association state plus the tracks' logit sums."""

    task: str  # vps | vss
    online: OnlineState
    rules: PanopticRules | None = None  # vps only
    class_logits: RunningClassLogits = field(default_factory=RunningClassLogits)


@dataclass
class PanopticFrame:
    """One frame's panoptic result on the model's device: the segments and the pixel -> segment map."""

    frame_index: int
    pixels: Tensor  # (H, W) int64 index into the segments, -1 = VOID
    track_ids: Tensor  # (S,) int64 track of each segment's query
    labels: Tensor  # (S,) int64 contiguous class (things first)
    scores: Tensor  # (S,) float32
    isthing: Tensor  # (S,) bool


@dataclass
class SemanticFrame:
    """One frame's semantic result on the model's device."""

    frame_index: int
    labels: Tensor  # (H, W) int64 contiguous class


class SegmentationInferenceMixin:
    """``init_segmentation_state`` / ``parse_frame`` for a model with the online mixin's parts."""

    def init_segmentation_state(self, *, task: str, rules: PanopticRules | None = None,
                                **online_options) -> SegmentationState:
        """A fresh state for one video; ``online_options`` are ``init_state``'s (association, snap_iou, ...)."""
        if task not in TASKS:
            raise SpvisError(f"unknown segmentation task {task!r} (choose vps or vss)")
        if task == "vps" and rules is None:
            raise SpvisError("--task vps needs the panoptic rules (the number of thing classes)")
        return SegmentationState(task=task, online=self.init_state(**online_options), rules=rules)

    @torch.no_grad()
    def parse_frame(self, state: SegmentationState, frame: np.ndarray | Tensor) -> PanopticFrame | SemanticFrame:
        """One uint8 RGB frame (H, W, 3) -> its panoptic (vps) or semantic (vss) result at (H, W); advances
        ``state``. Run the model in eval mode."""
        online = state.online
        prepared, out = self._segment_and_associate(online, frame)
        track_ids = out["track_ids"][0]  # (M,)
        logits = state.class_logits.update(track_ids, out["pred_logits"][0])  # (M, K+1) mean over the track's frames
        held = torch.nonzero(track_ids >= 0, as_tuple=True)[0]  # (M',) slots holding a track
        track_ids, logits, mask_logits = track_ids[held], logits[held], out["pred_masks"][0][held].float()

        def to_frame(masks: Tensor) -> Tensor:  # (n, h, w) -> (n, H, W) float32 logits at the frame's size
            return mask_logits_to_frame(masks, prepared.padded_size, prepared.image_size, prepared.frame_size)

        index = online.frame_index
        online.frame_index += 1
        if state.task == "vss":
            height, width = prepared.frame_size
            scores = torch.zeros((logits.shape[1] - 1, height, width), dtype=torch.float32, device=logits.device)
            for start in range(0, len(held), MASK_CHUNK):  # bounded: MASK_CHUNK masks at the frame's size at once
                chunk = slice(start, start + MASK_CHUNK)
                scores += semantic_class_scores(logits[chunk], to_frame(mask_logits[chunk]))
            return SemanticFrame(index, scores.argmax(0))
        assert state.rules is not None
        keep, kept_scores, kept_labels = keep_queries(logits, state.rules)  # few queries pass the 0.8 threshold
        kept_masks = to_frame(mask_logits[keep]) if len(keep) else mask_logits.new_zeros((0, *prepared.frame_size))
        result: PanopticAssignment = assign_panoptic(kept_scores, kept_labels, kept_masks.unsqueeze(1), state.rules,
                                                     queries=keep)
        return PanopticFrame(index, result.pixels[0], track_ids[result.queries], result.labels, result.scores,
                             result.isthing)
