"""Oracle fixes for ``spvis analyze``: the GT and predictions with one error type corrected, as TIDE fixes them.

Each fix takes one ``ErrorAssignment`` (one t_f) and the original inputs, and leaves every prediction it does not
touch in place (same object, same position in the list), so a fix with nothing to do gives exactly the base AP.

* classification: the fixer of its GT (``tide``) takes the GT's class; other classification errors are removed;
* mask: the fixer of its GT takes the GT's masks (TIDE sets the box to the GT's); other mask errors are removed;
* association: the predicted frames of the true positives and the association errors are re-linked by GT
  identity (``relink_by_identity``): the fragments of a split track become one track, swapped pieces are
  exchanged;
* duplicate, both, background: removed;
* missed: the missed GT tracks are dropped from the GT, as TIDE lowers the GT count (no prediction is added);
* oracle association (not an error type): every predicted frame of every prediction re-linked by GT identity,
  what a tracker that knows the identities could reach with the same per-frame masks, classes and scores (it
  removes nothing and changes no mask).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import numpy as np

from spvis.evaluation.ground_truth import GroundTruth
from spvis.evaluation.results_io import ResultTrack
from spvis.report.tide import NO_GT, ErrorAssignment, VideoOverlaps


@dataclass
class Fixed:
    """Inputs with one error type fixed, and how many predictions (GT tracks, for missed) the fix changed."""

    gt: GroundTruth
    results: list[ResultTrack]
    changed: int


def _apply(results: list[ResultTrack], replace: dict[int, ResultTrack | None],
           extra: list[ResultTrack] = ()) -> list[ResultTrack]:
    """``results`` with predictions replaced (None = removed) by result index, then ``extra`` appended."""
    out = [replace.get(r.index, r) for r in results]
    return [r for r in out if r is not None] + list(extra)


def remove_errors(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack], *, kind: str) -> Fixed:
    """Duplicate, both and background errors: the predictions are removed."""
    gone = {e.result_index: None for e in assignment.of_kind(kind)}
    return Fixed(gt, _apply(results, gone), len(gone))


def fix_classification(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack]) -> Fixed:
    """Each classification error that is its GT's fixer takes the GT's class; the others are removed."""
    by_index = {r.index: r for r in results}
    replace: dict[int, ResultTrack | None] = {}
    for e in assignment.of_kind("classification"):
        if assignment.fixer.get(e.gt_id) == e.result_index:
            replace[e.result_index] = dataclasses.replace(by_index[e.result_index],
                                                          category_id=assignment.gt_by_id[e.gt_id].category_id)
        else:
            replace[e.result_index] = None
    return Fixed(gt, _apply(results, replace), len(replace))


def fix_masks(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack]) -> Fixed:
    """Each mask error that is its GT's fixer takes the GT's masks on every frame; the others are removed."""
    by_index = {r.index: r for r in results}
    replace: dict[int, ResultTrack | None] = {}
    for e in assignment.of_kind("mask"):
        if assignment.fixer.get(e.gt_id) == e.result_index:
            g = assignment.gt_by_id[e.gt_id]
            replace[e.result_index] = dataclasses.replace(by_index[e.result_index], rles=list(g.rles),
                                                          frame_areas=g.frame_areas.copy())
        else:
            replace[e.result_index] = None
    return Fixed(gt, _apply(results, replace), len(replace))


def relink_by_identity(ov: VideoOverlaps, sources: list[ResultTrack], next_index: int
                       ) -> tuple[dict[int, None], list[ResultTrack]]:
    """Re-link the predicted frames of ``sources`` (one video, file order) by GT identity.

    A predicted frame belongs to the GT track its mask overlaps most (``VideoOverlaps.identity``: mask IoU >= 0.1,
    any category); a source's frames on one GT form a piece. The pieces of one GT and one predicted class are
    packed into tracks without two masks in one frame: best piece first (largest summed intersection with the
    GT, then score, then file order), each into the first track it does not overlap in time. A track that joins
    pieces of several sources is a re-linked track; a piece left alone stays with its source. So the fragments
    of a split track become one track, the pieces of two swapped tracks are exchanged, a duplicate (overlapping
    another piece in time) stays a duplicate, and a wrong track that joins nobody is not cut into more false
    positives. The frames of a changed source on no GT follow its largest re-linked track (where that one is
    free) when that track holds more of its frames than the source keeps, else they stay with the rest. A
    re-linked track keeps the class and takes the mean score of the sources of its frames. Returns the sources
    that changed (to remove) and the new tracks (indices from ``next_index``).
    """
    cols = [ov.result_col[r.index] for r in sources]
    pieces: dict[tuple[int, int], list[tuple[int, list[int]]]] = {}  # (GT column, class) -> [(source, frames)]
    for d in cols:
        r = ov.results[d]
        on = (r.frame_areas > 0) & (ov.identity[d] != NO_GT)
        for j in np.unique(ov.identity[d][on]).tolist():
            pieces.setdefault((j, r.category_id), []).append((d, np.flatnonzero(on & (ov.identity[d] == j)).tolist()))
    packed: list[dict[int, int]] = []  # frame -> source column
    categories: list[int] = []
    for (j, category), group in sorted(pieces.items()):
        first = len(packed)
        for d, frames in sorted(group, key=partial(_piece_order, ov, j)):
            k = next((k for k in range(first, len(packed)) if packed[k].keys().isdisjoint(frames)), len(packed))
            if k == len(packed):
                packed.append({})
                categories.append(category)
            packed[k].update(dict.fromkeys(frames, d))
    relinked = [(categories[k], frames) for k, frames in enumerate(packed) if len(set(frames.values())) > 1]
    changed = sorted({d for _, frames in relinked for d in frames.values()})
    new_tracks = []
    for d in changed:
        r = ov.results[d]
        in_tracks = [(sum(s == d for s in frames.values()), k) for k, (_, frames) in enumerate(relinked)]
        own_frames = [t for t in np.flatnonzero(r.frame_areas > 0).tolist()
                      if not any(frames.get(t) == d for _, frames in relinked)]
        size, k = max(in_tracks)
        if size > sum(ov.identity[d, t] != NO_GT for t in own_frames):  # most of it was re-linked
            target = relinked[k][1]
            for t in [t for t in own_frames if ov.identity[d, t] == NO_GT and t not in target]:
                target[t] = d
                own_frames.remove(t)
        if own_frames:
            new_tracks.append(_track_of(ov, r.category_id, dict.fromkeys(own_frames, d), next_index + len(new_tracks)))
    for category, frames in relinked:
        new_tracks.append(_track_of(ov, category, frames, next_index + len(new_tracks)))
    return {ov.results[d].index: None for d in changed}, new_tracks


def _piece_order(ov: VideoOverlaps, j: int, piece: tuple[int, list[int]]) -> tuple:
    """Sort key of a piece (source column, frames) on GT column ``j``: largest summed intersection first."""
    d, frames = piece
    inter, _ = ov.frame_areas(d, j, np.array(frames))
    return -int(inter.sum()), -ov.results[d].score, ov.results[d].index


def _track_of(ov: VideoOverlaps, category: int, frames: dict[int, int], index: int) -> ResultTrack:
    """A prediction made of the masks of ``frames`` (frame -> source column); score: mean over its frames."""
    rles: list[dict | None] = [None] * ov.video.length
    areas = np.zeros(ov.video.length, dtype=np.int64)
    for t, d in frames.items():
        rles[t], areas[t] = ov.results[d].rles[t], ov.results[d].frame_areas[t]
    score = float(np.mean([ov.results[d].score for d in frames.values()]))
    return ResultTrack(index, ov.video.id, category, score, rles, areas)


def relink(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack], subset: set[int]) -> Fixed:
    """``relink_by_identity`` on the predictions whose index is in ``subset``, video by video."""
    removed: dict[int, ResultTrack | None] = {}
    extra: list[ResultTrack] = []
    next_index = max((r.index for r in results), default=-1) + 1
    for ov in assignment.overlaps.values():
        sources = [r for r in ov.results if r.index in subset]
        if not sources:
            continue
        gone, new = relink_by_identity(ov, sources, next_index + len(extra))
        removed.update(gone)
        extra += new
    return Fixed(gt, _apply(results, removed, extra), len(removed))


def fix_association(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack]) -> Fixed:
    """Association: true positives and association errors re-linked by GT identity."""
    subset = set(assignment.matched) | {e.result_index for e in assignment.of_kind("association")}
    return relink(assignment, gt, results, subset)


def oracle_association(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack]) -> Fixed:
    """Every predicted frame of every prediction re-linked by GT identity (the tracker bound)."""
    return relink(assignment, gt, results, {r.index for r in results})


def fix_missed(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack]) -> Fixed:
    """Missed GT tracks dropped from the GT (TIDE lowers the number of GT); predictions unchanged."""
    drop = {g.id for g in assignment.missed}
    tracks = {vid: [g for g in ts if g.id not in drop] for vid, ts in gt.tracks_by_video.items()}
    fixed_gt = GroundTruth(gt.source, gt.videos, gt.categories, tracks, has_occlusion=gt.has_occlusion)
    return Fixed(fixed_gt, results, len(drop))


# error type -> fix(assignment, gt, results) -> Fixed
FIXES = {
    "classification": fix_classification,
    "duplicate": partial(remove_errors, kind="duplicate"),
    "mask": fix_masks,
    "association": fix_association,
    "both": partial(remove_errors, kind="both"),
    "background": partial(remove_errors, kind="background"),
    "missed": fix_missed,
}
