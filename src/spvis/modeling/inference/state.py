"""The explicit state of one video's online inference (SAM 2's inference state, typed), and its save / restore.

``OnlineState`` is what ``SPVISModel.track_frame`` reads and advances: the association mode and its options, the
frame size, and the tracker's (or MinVIS's) bounded per-video state. Nothing in it grows with the number of frames.
``state_dict()`` turns it into plain containers of tensors, numbers and strings, which ``torch.save`` writes and
``torch.load(weights_only=True)`` reads back (nothing is unpickled); ``OnlineState.from_state_dict`` rebuilds it,
instantiating only the state classes listed in ``_state_classes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

ASSOCIATIONS = ("learned", "minvis", "pgt")
AUTOCAST_DTYPES = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_CLASS, _ARRAY, _TUPLE = "__class__", "__ndarray__", "__tuple__"


@dataclass
class OnlineState:
    """One video's online inference state; ``SPVISModel.init_state`` makes it, ``track_frame`` advances it."""

    association: str  # learned (the trained tracker) | minvis (segmenter + Hungarian on query embeddings) | pgt
    snap_iou: float = 0.0  # TEST.SNAP_IOU: tracks emit the segmenter query they overlap by this IoU (0 = off)
    snap_hide: bool = False  # TEST.SNAP_UNMATCHED hide: snapped-off tracks emit an empty mask on this frame
    exclusive_masks: bool = False  # TEST.EXCLUSIVE_MASKS: a pixel two tracks' masks claim goes to one of them
    minvis_mask_weight: float = 0.0  # TEST.MINVIS_MASK_WEIGHT: the mask-overlap term in MinVIS's matching
    minvis_motion: bool = False  # MODEL.TRACKER.ALIGN_MOTION for that term
    pgt_options: Any = None  # QueryTrackerOptions of TEST.TRACKER=pgt (MODEL.TRACKER.PGT)
    autocast: str = ""  # '' (float32) | bf16 | fp16: the network runs under this autocast
    frame_index: int = 0  # frames tracked so far (the next frame's index)
    frame_size: tuple[int, int] | None = None  # (H, W) of the video, set by its first frame
    association_state: Any = None  # TrackerState | MinVISState | None (before the first frame)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The torch dtype of ``autocast`` (None = float32)."""
        return AUTOCAST_DTYPES[self.autocast]

    def state_dict(self) -> dict:
        """Plain containers (dicts, lists, tensors, numbers, strings) that ``torch.save`` writes and
        ``torch.load(weights_only=True)`` reads. Tensors stay on their device."""
        return _encode(self)

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device | str | None = None) -> "OnlineState":
        """Rebuild a state from ``state_dict()``'s output, its tensors moved to ``device`` when given."""
        restored = _decode(state, None if device is None else torch.device(device))
        if not isinstance(restored, cls):
            raise ValueError(f"not an online inference state: {type(restored).__name__}")
        return restored


def autocast_context(name: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a state's ``autocast`` name ('' | bf16 | fp16) on ``device``; a no-op for ''."""
    dtype = AUTOCAST_DTYPES[name]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def _state_classes() -> dict[str, type]:
    """The classes a saved state may hold (imported here: they live in modules that import nothing of this one)."""
    from spvis.modeling.minvis import MinVISState
    from spvis.modeling.pgt.lifecycle import LifecycleRules, SleepingTrack, TrackBook
    from spvis.modeling.pgt.matching import SlotMasks
    from spvis.modeling.pgt.memory import TrackMemory
    from spvis.modeling.pgt.query_tracker import QueryTrackerOptions, QueryTrackState
    from spvis.modeling.rcp import CausalRCPState
    from spvis.modeling.tracker import TrackerState

    classes = (OnlineState, TrackerState, MinVISState, TrackMemory, TrackBook, SleepingTrack, LifecycleRules,
               CausalRCPState, QueryTrackerOptions, QueryTrackState, SlotMasks)
    return {cls.__name__: cls for cls in classes}


def _encode(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.array(value, copy=True))}
    if isinstance(value, (list, tuple)):
        items = [_encode(v) for v in value]
        return {_TUPLE: items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if type(value).__name__ in _state_classes():
        attributes = value.__dict__ if not dataclasses.is_dataclass(value) else {
            f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {_CLASS: type(value).__name__, "attributes": {k: _encode(v) for k, v in attributes.items()}}
    raise TypeError(f"cannot save a {type(value).__name__} in an inference state")


def _decode(value: Any, device: torch.device | None) -> Any:
    if isinstance(value, Tensor):
        return value if device is None else value.to(device)
    if isinstance(value, list):
        return [_decode(v, device) for v in value]
    if not isinstance(value, dict):
        return value
    if _ARRAY in value:
        return value[_ARRAY].numpy()
    if _TUPLE in value:
        return tuple(_decode(v, device) for v in value[_TUPLE])
    if _CLASS in value:
        classes = _state_classes()
        if value[_CLASS] not in classes:
            raise ValueError(f"an inference state cannot hold a {value[_CLASS]!r}")
        obj = object.__new__(classes[value[_CLASS]])
        obj.__dict__.update({k: _decode(v, device) for k, v in value["attributes"].items()})
        return obj
    return {k: _decode(v, device) for k, v in value.items()}
