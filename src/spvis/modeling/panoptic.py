"""Video panoptic (VPS) and video semantic (VSS) post-processing of the segmenter's / tracker's query outputs.

The rules of DVIS's ``TEST.TASK`` vps / vss (reference §6), for any number T of frames at once (T = 1 is the
per-frame rule, T = the whole video the per-video rule; they agree frame by frame when the class logits agree):

* **VPS.** Each query's (score, label) = max / argmax of the softmax including no-object; queries whose label is
  not no-object and whose score > ``object_threshold`` (0.8) are kept. Every pixel of every frame goes to the kept
  query maximising score x sigmoid(mask). A kept query's ``area`` = pixels it wins where its sigmoid(mask) >= 0.5,
  ``orig`` = pixels where sigmoid(mask) >= 0.5 (over all T frames); it is dropped when either is empty or
  area / orig < ``overlap_threshold`` (0.8). Its pixels are then VOID. Contiguous classes < ``num_things`` are
  things (things first), the rest stuff. Panoptic ids are given by the caller (``VideoSegmentIds``): one id per
  stuff class for the whole video, one per tracked thing.
* **VSS.** Per-pixel class score = sum over queries of softmax(class logits, no-object left out) x sigmoid(mask);
  the label is its argmax.

``RunningClassLogits`` keeps each track's class logits summed over the frames seen so far: online inference scores
a frame with the mean over the track's frames up to it (DVIS online uses the mean over all T frames, which only the
last frame of a streamed video knows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

OBJECT_THRESHOLD = 0.8  # DVIS TEST.OBJECT_MASK_THRESHOLD
OVERLAP_THRESHOLD = 0.8  # DVIS TEST.OVERLAP_THRESHOLD
MASK_ON = 0.5  # sigmoid(mask) >= this is "inside" the query's mask
VOID = -1  # pixel value of unassigned pixels in ``PanopticAssignment.pixels``


@dataclass(frozen=True)
class PanopticRules:
    """The VPS thresholds and the thing / stuff split of the contiguous classes."""

    num_things: int  # contiguous classes 0 .. num_things - 1 are things, the rest stuff
    object_threshold: float = OBJECT_THRESHOLD
    overlap_threshold: float = OVERLAP_THRESHOLD

    def __post_init__(self) -> None:
        if self.num_things < 0:
            raise ValueError(f"num_things must be >= 0, got {self.num_things}")
        for name in ("object_threshold", "overlap_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


@dataclass
class PanopticAssignment:
    """The segments kept among Q queries and which one each pixel shows (all tensors on one device)."""

    pixels: Tensor  # (T, H, W) int64: index into the segments below, VOID (-1) where no segment is shown
    queries: Tensor  # (S,) int64: the query each segment comes from
    labels: Tensor  # (S,) int64 contiguous class
    scores: Tensor  # (S,) float32 class probability
    isthing: Tensor  # (S,) bool


def keep_queries(class_logits: Tensor, rules: PanopticRules) -> tuple[Tensor, Tensor, Tensor]:
    """class_logits (Q, K+1) -> (kept query indices (N,) int64, their scores (N,) float32, labels (N,) int64):
    the argmax of the softmax with no-object is a class, with probability > ``rules.object_threshold``."""
    return keep_by_probabilities(F.softmax(class_logits.float(), dim=-1), rules)


def keep_by_probabilities(probs: Tensor, rules: PanopticRules) -> tuple[Tensor, Tensor, Tensor]:
    """``keep_queries`` on class probabilities (Q, K+1) with the no-object column last (offline: the refiner's and
    the tracker's combined)."""
    scores, labels = probs.float().max(-1)  # (Q,), (Q,)
    no_object = probs.shape[-1] - 1
    keep = torch.nonzero((labels != no_object) & (scores > rules.object_threshold), as_tuple=True)[0]  # (N,)
    return keep, scores[keep], labels[keep]


def panoptic_counts(scores: Tensor, mask_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Pixels per kept query over some frames: (area (N,), orig (N,)) int64, ``area`` = pixels it wins where its
    sigmoid(mask) >= 0.5, ``orig`` = pixels where sigmoid(mask) >= 0.5. scores (N,), mask_logits (N, T, H, W).
    Counts of consecutive windows of a video add up to the video's (the per-video rule in bounded memory)."""
    N = scores.shape[0]
    masks = mask_logits.float().sigmoid()  # (N, T, H, W)
    winner = (scores.float().view(N, 1, 1, 1) * masks).argmax(0)  # (T, H, W) first maximum on ties
    on = masks >= MASK_ON  # (N, T, H, W)
    wins = on & (winner.unsqueeze(0) == torch.arange(N, device=masks.device).view(N, 1, 1, 1))
    return wins.flatten(1).sum(1), on.flatten(1).sum(1)


def segments_kept(area: Tensor, orig: Tensor, rules: PanopticRules) -> Tensor:
    """bool (N,): the overlap rule on a query's video counts (both non-empty, area / orig >= the threshold)."""
    ratio = area.double() / orig.clamp(min=1).double()
    return (area > 0) & (orig > 0) & ~(ratio < rules.overlap_threshold)


def panoptic_pixels(scores: Tensor, mask_logits: Tensor, ok: Tensor) -> Tensor:
    """int64 (T, H, W) index among the ``ok`` (N,) queries of the query each pixel shows, VOID (-1) where the
    winning query is dropped or the pixel lies outside its mask. scores (N,), mask_logits (N, T, H, W)."""
    N = scores.shape[0]
    if N == 0:
        return torch.full(mask_logits.shape[1:], VOID, dtype=torch.int64, device=mask_logits.device)
    masks = mask_logits.float().sigmoid()  # (N, T, H, W)
    winner = (scores.float().view(N, 1, 1, 1) * masks).argmax(0)  # (T, H, W)
    new_index = torch.cumsum(ok.long(), 0) - 1  # (N,) position among the kept segments
    shown = (masks.gather(0, winner.unsqueeze(0))[0] >= MASK_ON) & ok[winner]  # (T, H, W)
    return torch.where(shown, new_index[winner], torch.full_like(winner, VOID))


def assign_panoptic(scores: Tensor, labels: Tensor, mask_logits: Tensor, rules: PanopticRules,
                    queries: Tensor | None = None) -> PanopticAssignment:
    """The VPS pixel assignment of N kept queries (module docstring).

    scores (N,) float, labels (N,) int64 (``keep_queries``), mask_logits (N, T, H, W) at the output resolution;
    ``queries`` (N,) names them in the result (default 0..N-1). Every rule counts pixels over all T frames.
    """
    N = scores.shape[0]
    device = mask_logits.device
    queries = torch.arange(N, device=device) if queries is None else queries
    ok = segments_kept(*panoptic_counts(scores, mask_logits), rules) if N else torch.zeros(0, dtype=torch.bool,
                                                                                           device=device)
    pixels = panoptic_pixels(scores, mask_logits, ok)
    return PanopticAssignment(pixels, queries[ok], labels[ok], scores[ok].float(), labels[ok] < rules.num_things)


def panoptic_from_logits(class_logits: Tensor, mask_logits: Tensor, rules: PanopticRules) -> PanopticAssignment:
    """class_logits (Q, K+1) and mask_logits (Q, T, H, W) at the output resolution -> the VPS assignment."""
    keep, scores, labels = keep_queries(class_logits, rules)
    return assign_panoptic(scores, labels, mask_logits[keep], rules, queries=keep)


def semantic_class_scores(class_logits: Tensor, mask_logits: Tensor) -> Tensor:
    """class_logits (Q, K+1), mask_logits (Q, ...) -> float32 (K, ...) = sum_q softmax_q[:K] x sigmoid(mask_q).
    Sums over query chunks add up: the caller may feed queries in chunks and add the results."""
    return semantic_scores_from_probabilities(F.softmax(class_logits.float(), dim=-1)[:, :-1], mask_logits)


def semantic_scores_from_probabilities(probs: Tensor, mask_logits: Tensor) -> Tensor:
    """probs (Q, K) class probabilities without no-object (offline: refiner and tracker combined), mask_logits
    (Q, ...) -> float32 (K, ...) = sum_q probs_q x sigmoid(mask_q)."""
    masks = mask_logits.float().sigmoid()  # (Q, ...)
    return torch.einsum("qk,qn->kn", probs.float(), masks.flatten(1)).view(probs.shape[1], *mask_logits.shape[1:])


def semantic_labels(class_logits: Tensor, mask_logits: Tensor) -> Tensor:
    """class_logits (Q, K+1), mask_logits (Q, T, H, W) -> int64 (T, H, W) argmax class (VSS rule)."""
    return semantic_class_scores(class_logits, mask_logits).argmax(0)


class RunningClassLogits:
    """Per-track class logits summed over the frames each track was seen (memory: one row per track of the video).

    ``update(track_ids, logits)`` adds a frame and returns each row's mean over its track's frames so far; rows whose
    track id is negative (a slot holding no track) get their own logits back and are not stored.
    """

    def __init__(self) -> None:
        self.ids: Tensor | None = None  # (N,) int64 track ids seen
        self.sums: Tensor | None = None  # (N, K+1) float32
        self.counts: Tensor | None = None  # (N,) float32 frames seen

    def update(self, track_ids: Tensor, logits: Tensor) -> Tensor:
        """track_ids (M,) int64, logits (M, K+1) -> mean logits (M, K+1) float32."""
        logits = logits.float()
        held = track_ids >= 0  # (M,)
        if self.ids is None:
            self.ids = track_ids.new_zeros(0)
            self.sums = logits.new_zeros((0, logits.shape[1]))
            self.counts = logits.new_zeros(0)
        assert self.sums is not None and self.counts is not None
        known = (track_ids.unsqueeze(1) == self.ids.unsqueeze(0)).any(1)  # (M,)
        new = torch.unique(track_ids[held & ~known])  # (n,) sorted, one row per new track
        if new.numel():
            self.ids = torch.cat([self.ids, new])
            self.sums = torch.cat([self.sums, logits.new_zeros((new.numel(), logits.shape[1]))])
            self.counts = torch.cat([self.counts, logits.new_zeros(new.numel())])
        if self.ids.numel() == 0:  # no track seen yet (e.g. PGT before its first detection)
            return logits
        row = (track_ids.unsqueeze(1) == self.ids.unsqueeze(0)).float().argmax(1)  # (M,) row of each track
        rows, vals = row[held], logits[held]
        self.sums.index_add_(0, rows, vals)
        self.counts.index_add_(0, rows, torch.ones_like(rows, dtype=self.counts.dtype))
        mean = self.sums[row] / self.counts[row].clamp(min=1).unsqueeze(1)  # (M, K+1)
        return torch.where(held.unsqueeze(1), mean, logits)
