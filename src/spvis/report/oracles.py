"""Oracle fixes for ``spvis analyze``: the GT and predictions with one error type corrected, as TIDE fixes them.

Each fix starts from the original inputs and leaves every prediction it does not touch in place (same object,
same position in the list), so a fix with nothing to do gives exactly the base AP.

* classification: the fixer of its GT (``tide``) takes the GT's class; other classification errors are removed;
* duplicate, both, background: removed;
* mask: on every frame where a prediction follows its GT (its frames on the GT: the mask overlaps that GT most)
  the predicted mask becomes the GT's. Applied to every true positive and to each mask error that is its GT's
  fixer; other mask errors are removed. Frames off the GT stay as they are (they are association's share);
* association: the predicted frames of the true positives and the association errors are re-linked by GT
  identity (``relink_by_identity``); a split track becomes one track, a switching track is cut at the switch;
* missed: the missed GT tracks are dropped from the GT, as TIDE lowers the GT count (no prediction is added);
* oracle association: every predicted frame of every prediction is re-linked by GT identity. It bounds what
  any tracker could add on top of the same per-frame masks.

True positives get the mask and association fixes too: the AP averages IoU thresholds 0.5:0.95, so a true
positive at IoU 0.7 is a localisation error at the stricter thresholds (where TIDE would assign it one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import numpy as np

from spvis.evaluation.ground_truth import GroundTruth, GtTrack
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


def _with_gt_masks(ov: VideoOverlaps, r: ResultTrack, g: GtTrack) -> ResultTrack | None:
    """``r`` with the GT's mask on its frames on ``g``; None when those frames are already exact."""
    d, j = ov.result_col[r.index], ov.gt_col[g.id]
    frames = ov.frames_on(d, j)
    inter, union = ov.frame_areas(d, j, frames)
    if np.all(inter == union):
        return None
    rles, areas = list(r.rles), r.frame_areas.copy()
    for t in frames.tolist():
        rles[t], areas[t] = g.rles[t], g.frame_areas[t]
    return dataclasses.replace(r, rles=rles, frame_areas=areas)


def fix_masks(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack]) -> Fixed:
    """Mask quality: GT masks on the frames where true positives and fixer mask errors follow their GT."""
    by_index = {r.index: r for r in results}
    replace: dict[int, ResultTrack | None] = {}
    pairs = list(assignment.matched.items())
    for e in assignment.of_kind("mask"):
        if assignment.fixer.get(e.gt_id) == e.result_index:
            pairs.append((e.result_index, e.gt_id))
        else:
            replace[e.result_index] = None
    for index, gid in pairs:
        r = by_index[index]
        fixed = _with_gt_masks(assignment.overlaps[r.video_id], r, assignment.gt_by_id[gid])
        if fixed is not None:
            replace[index] = fixed
    return Fixed(gt, _apply(results, replace), len(replace))


def relink_by_identity(ov: VideoOverlaps, sources: list[ResultTrack], next_index: int
                       ) -> tuple[dict[int, None], list[ResultTrack]]:
    """Re-link the predicted frames of ``sources`` (one video, file order) into tracks by GT identity.

    A frame's identity is the GT track its mask overlaps most (per-frame IoU > 0, any category, crowd included;
    ``VideoOverlaps.identity``). Frames of one identity and one predicted class form tracks: per frame, the
    frame that overlaps the GT best (ties: the higher score, then file order) goes to the first track, the next
    one to a second track (a duplicate stays a duplicate), and so on. A frame that overlaps no GT stays with the track holding most of its source's
    frames (its own track if that one is taken at that frame, or if the source overlaps no GT at all). A new
    track keeps the class and takes the mean score of the sources of its frames. Returns the sources that
    changed (to remove) and the new tracks (indices from ``next_index``); an unchanged source stays as is.
    """
    tracks: list[dict] = []  # {"category": int, "frames": {t: source column}}
    groups: dict[tuple[int, int], dict[int, list[int]]] = {}  # (GT column, class) -> frame -> source columns
    cols = [ov.result_col[r.index] for r in sources]
    for d in cols:
        r = ov.results[d]
        for t in np.flatnonzero((r.frame_areas > 0) & (ov.identity[d] != NO_GT)).tolist():
            groups.setdefault((int(ov.identity[d, t]), r.category_id), {}).setdefault(t, []).append(d)
    for (j, category), frames in sorted(groups.items()):
        group_tracks: list[dict] = []
        for t, ds in sorted(frames.items()):
            ranked = sorted(ds, key=lambda c: (-ov.frame_iou[t, j, c], -ov.results[c].score, ov.results[c].index))
            for rank, d in enumerate(ranked):
                if rank == len(group_tracks):
                    group_tracks.append({"category": category, "frames": {}})
                group_tracks[rank]["frames"][t] = d
        tracks += group_tracks
    for d in cols:
        r = ov.results[d]
        counts = [sum(s == d for s in tr["frames"].values()) for tr in tracks]
        home = tracks[int(np.argmax(counts))] if counts and max(counts) > 0 else None
        own = {"category": r.category_id, "frames": {}}
        for t in np.flatnonzero((r.frame_areas > 0) & (ov.identity[d] == NO_GT)).tolist():
            (home if home is not None and t not in home["frames"] else own)["frames"][t] = d
        if own["frames"]:
            tracks.append(own)
    holders: dict[int, list[int]] = {d: [] for d in cols}
    for k, tr in enumerate(tracks):
        for d in set(tr["frames"].values()):
            holders[d].append(k)
    changed = {d for d in cols if holders[d]  # a source with no mask at all stays as it is
               and (len(holders[d]) != 1 or set(tracks[holders[d][0]]["frames"].values()) != {d})}
    new_tracks = []
    for k, tr in enumerate(tracks):
        if not changed & set(tr["frames"].values()):
            continue
        rles: list[dict | None] = [None] * ov.video.length
        areas = np.zeros(ov.video.length, dtype=np.int64)
        for t, d in tr["frames"].items():
            rles[t], areas[t] = ov.results[d].rles[t], ov.results[d].frame_areas[t]
        score = float(np.mean([ov.results[d].score for d in tr["frames"].values()]))
        new_tracks.append(ResultTrack(next_index + len(new_tracks), ov.video.id, tr["category"], score, rles, areas))
    return {ov.results[d].index: None for d in changed}, new_tracks


def relink(assignment: ErrorAssignment, gt: GroundTruth, results: list[ResultTrack], subset: set[int]) -> Fixed:
    """``relink_by_identity`` on the predictions whose index is in ``subset``, video by video."""
    removed: dict[int, ResultTrack | None] = {}
    extra: list[ResultTrack] = []
    next_index = max((r.index for r in results), default=-1) + 1
    for video_id, ov in assignment.overlaps.items():
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
