"""What inference yields per frame and per video: the contract shared by online and offline engines."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FrameResult:
    """One frame's instances after tracking, at the frame's original resolution.

    ``track_ids`` are stable identities over the whole video (not query slots); ``masks`` is
    bool (N, H, W); ``scores`` are the current per-track confidences and ``labels`` contiguous
    class ids (0..K-1). ``frame`` is the uint8 RGB input frame (H, W, 3) when the caller asked for it
    (overlay rendering), else None.
    """

    frame_index: int
    track_ids: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32
    masks: np.ndarray  # (N, H, W) bool
    frame: np.ndarray | None = None


@dataclass
class VideoResult:
    """Final per-video output: one entry per (track, class) in the benchmark-server format."""

    video_id: int | str
    num_frames: int
    height: int
    width: int
    entries: list[dict] = field(default_factory=list)  # {video_id, category_id, score, segmentations}
    truncated: bool = False
    error: str | None = None
