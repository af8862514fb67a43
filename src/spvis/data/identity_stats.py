"""Identity-hardness statistics of video ground truth (``spvis data check``, ``spvis synth``).

Three properties make keeping identities hard for a tracker that links frame to frame:

* **same-class crossings**: two tracks of one category pass over each other. Between two consecutive
  frames where both are visible and separated (centre distance at least ``SEPARATION`` x the sum of their half
  box sizes; in the frames between, the two nearly coincide or one is missing) the vector between their box
  centres turns by more than 90 degrees, and the straight-line relative motion between those frames comes
  closer than the sum of their half box sizes (they touch or overlap).
* **hidden spans**: a run of frames inside a track's life (between its first and last visible frame) without
  a mask, unless it is a border re-entry. Their lengths in frames are reported (min / median / max).
* **border re-entries**: a gap inside a track's life in which the object was outside the frame; it came back
  with the same instance id. Where the ground truth labels out-of-frame frames (``spvis synth``'s
  ``visibility``: ``out_of_frame``) a gap with such a frame is one; elsewhere a gap whose visible boxes on
  both sides touch the frame border is one (an object hidden while touching the border then counts too).

Boxes are all that is needed, so any YouTube-VIS / OVIS style dataset can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Sequence

import numpy as np

Box = Sequence[float] | None  # [x, y, w, h] of the visible mask, None where the object has no mask
SEPARATION = 0.5  # centres this fraction of the summed half box sizes apart count as separated (crossings)
LONG_HIDDEN = 10  # hidden spans of at least this many frames are counted apart (the identity-hard range)
BORDER_TOLERANCE = 1.0  # a box edge within this many pixels of the frame edge touches the border


@dataclass
class IdentityCounts:
    """Accumulated identity statistics of a dataset (see the module docstring)."""

    same_class_pairs: int = 0
    crossings: int = 0
    hidden_spans: list[int] = field(default_factory=list)
    reentries: int = 0

    def add(self, other: IdentityCounts) -> None:
        """Accumulate another video's counts into this one."""
        self.same_class_pairs += other.same_class_pairs
        self.crossings += other.crossings
        self.hidden_spans.extend(other.hidden_spans)
        self.reentries += other.reentries

    def summary(self) -> dict:
        """Json-ready numbers: pairs, crossings, hidden span count and min / median / max length, re-entries."""
        spans = self.hidden_spans
        return {"same_class_pairs": self.same_class_pairs, "same_class_crossings": self.crossings,
                "hidden_spans": len(spans), "hidden_span_min": int(min(spans)) if spans else 0,
                "hidden_span_median": float(np.median(spans)) if spans else 0.0,
                "hidden_span_max": int(max(spans)) if spans else 0,
                f"hidden_spans_{LONG_HIDDEN}plus": sum(n >= LONG_HIDDEN for n in spans),
                "border_reentries": self.reentries}


def touches_border(box: Sequence[float], height: int, width: int) -> bool:
    """True when a visible box reaches the frame edge (the object may be partly outside the frame)."""
    x, y, w, h = box
    tol = BORDER_TOLERANCE
    return x <= tol or y <= tol or x + w >= width - tol or y + h >= height - tol


def life_gaps(boxes: Sequence[Box]) -> list[tuple[int, int]]:
    """(first, last) frame of every run without a box strictly between a track's first and last visible frame."""
    present = [b is not None for b in boxes]
    gaps, start = [], None
    seen = False
    for t, here in enumerate(present):
        if here:
            if start is not None and seen:
                gaps.append((start, t - 1))
            start, seen = None, True
        elif start is None:
            start = t
    return gaps


def classify_gaps(boxes: Sequence[Box], height: int, width: int,
                  outside: Sequence[bool] | None = None) -> tuple[list[int], int]:
    """(hidden span lengths, border re-entries) of one track. ``outside`` (per frame, from labels) marks
    out-of-frame frames; without it a gap with border-touching boxes on both sides counts as a re-entry."""
    hidden, reentries = [], 0
    for first, last in life_gaps(boxes):
        if outside is not None:
            left = any(outside[first:last + 1])
        else:
            left = touches_border(boxes[first - 1], height, width) and touches_border(boxes[last + 1], height, width)
        if left:
            reentries += 1
        else:
            hidden.append(last - first + 1)
    return hidden, reentries


def _centre_and_reach(box: Sequence[float]) -> tuple[np.ndarray, float]:
    x, y, w, h = box
    return np.array([x + w / 2.0, y + h / 2.0]), max(w, h) / 2.0


def _separated(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when two visible boxes' centres are at least ``SEPARATION`` x (sum of half box sizes) apart."""
    (ca, ra), (cb, rb) = _centre_and_reach(a), _centre_and_reach(b)
    return float(np.hypot(*(ca - cb))) >= SEPARATION * (ra + rb)


def pair_crossings(boxes_a: Sequence[Box], boxes_b: Sequence[Box]) -> int:
    """Times two tracks pass over each other (module docstring): between consecutive frames where both are
    visible and separated, the centre vector turns by more than 90 degrees and the straight relative motion
    passes within touching distance. Frames where the two nearly coincide are skipped (a hysteresis): there a
    partly covered object's visible box centre jumps, and a small jump would flip the vector."""
    apart = [t for t, (a, b) in enumerate(zip(boxes_a, boxes_b))
             if a is not None and b is not None and _separated(a, b)]
    count = 0
    for f, g in zip(apart, apart[1:]):
        (ca_f, ra_f), (cb_f, rb_f) = _centre_and_reach(boxes_a[f]), _centre_and_reach(boxes_b[f])
        (ca_g, ra_g), (cb_g, rb_g) = _centre_and_reach(boxes_a[g]), _centre_and_reach(boxes_b[g])
        d_f, d_g = ca_f - cb_f, ca_g - cb_g
        if float(d_f @ d_g) >= 0:
            continue
        step = d_g - d_f  # the turn happens with the relative motion passing closest to zero in between
        closest = abs(float(d_f[0] * d_g[1] - d_f[1] * d_g[0])) / max(float(np.hypot(*step)), 1e-6)
        count += int(closest < max(ra_f, ra_g) + max(rb_f, rb_g))
    return count


@dataclass
class TrackBoxes:
    """What the statistics read of one track: category, per-frame boxes and, where labelled, out-of-frame flags."""

    category: int
    boxes: Sequence[Box]
    outside: Sequence[bool] | None = None


def video_identity_counts(tracks: Sequence[TrackBoxes], height: int, width: int) -> IdentityCounts:
    """Identity statistics of one video's tracks."""
    counts = IdentityCounts()
    for track in tracks:
        hidden, reentries = classify_gaps(track.boxes, height, width, track.outside)
        counts.hidden_spans.extend(hidden)
        counts.reentries += reentries
    for a, b in combinations(tracks, 2):
        if a.category == b.category:
            counts.same_class_pairs += 1
            counts.crossings += pair_crossings(a.boxes, b.boxes)
    return counts


def format_identity_line(summary: dict) -> str:
    """The one printable line of ``IdentityCounts.summary``."""
    return (f"identity: same-class crossings {summary['same_class_crossings']} "
            f"(over {summary['same_class_pairs']} same-class pairs)  hidden spans inside a track's life "
            f"{summary['hidden_spans']} (frames min/median/max {summary['hidden_span_min']}/"
            f"{summary['hidden_span_median']:g}/{summary['hidden_span_max']}, "
            f"{summary[f'hidden_spans_{LONG_HIDDEN}plus']} of {LONG_HIDDEN}+ frames)  "
            f"border re-entries {summary['border_reentries']}")
