"""Ground truth for evaluation: the YTVIS/OVIS json read the way the official evaluators read it.

Differs from ``spvis.data.ytvis`` (the training loader) on purpose: the official API takes a GT
track's area from the json ``areas`` field (not from the decoded masks), keeps annotation order
and ids (id 0 included), treats any truthy per-frame entry as present, and reads ``occlusion``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spvis.data.json_fields import flag_field, unique_entries
from spvis.data.rle import RLEError
from spvis.data.segmentation import normalize_segmentation, validate_normalized
from spvis.data.ytvis import parse_categories, parse_videos
from spvis.errors import DataFormatError
from spvis.utils.json_io import read_json

# OVIS per-frame occlusion labels -> score (reference §1.8)
OCCLUSION_SCORES = {"no_occlusion": 0.0, "slight_occlusion": 0.25, "severe_occlusion": 0.75}


@dataclass
class GtTrack:
    """One annotated track: per-frame compressed RLE (None where absent) and the official summaries."""

    id: int
    video_id: int
    category_id: int
    iscrowd: bool
    rles: list[dict | None]
    frame_areas: np.ndarray  # (T,) int64 decoded mask areas (0 where absent)
    avg_area: float  # mean of the truthy json ``areas`` entries (official track area)
    occlusion_score: float | None = None


@dataclass
class GtVideo:
    """A video as the evaluator needs it."""

    id: int
    height: int
    width: int
    length: int
    name: str


@dataclass
class GroundTruth:
    """A loaded GT file: videos in file order, categories sorted by id, tracks grouped by video."""

    source: str
    videos: list[GtVideo]
    categories: list[dict]
    tracks_by_video: dict[int, list[GtTrack]]
    has_occlusion: bool = False
    video_index: dict[int, GtVideo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.video_index = {v.id: v for v in self.videos}

    @property
    def category_ids(self) -> list[int]:
        return [int(c["id"]) for c in self.categories]


def _read_gt_json(gt: str | Path | dict) -> tuple[str, dict]:
    if isinstance(gt, dict):
        return "<gt dict>", gt
    path = Path(gt)
    data = read_json(path, what="ground-truth file")
    if not isinstance(data, dict):
        raise DataFormatError(path, "top level must be an object with videos/annotations/categories")
    return str(path), data


def _track_avg_area(areas: Any, frame_areas: np.ndarray, source: str, entry: str) -> float:
    """Official track area: mean of the truthy ``areas`` entries (0 if none); decoded areas if the field is absent."""
    if areas is None:
        values = [int(a) for a in frame_areas if a]
    else:
        if not isinstance(areas, list) or len(areas) != len(frame_areas):
            raise DataFormatError(source, f"must be a list of {len(frame_areas)} numbers or nulls", entry=entry,
                                  field="areas")
        values = []
        for a in areas:
            if a is not None and (not isinstance(a, (int, float)) or isinstance(a, bool) or not math.isfinite(a)):
                raise DataFormatError(source, f"entries must be numbers or null, got {a!r}", entry=entry, field="areas")
            if a:
                values.append(a)
    return float(np.array(values).mean()) if values else 0.0


def _occlusion_score(occlusion: Any, source: str, entry: str) -> float:
    """OVIS occlusion score: mean of the top ceil(n/2) per-frame scores (reference §1.8)."""
    if not isinstance(occlusion, list):
        raise DataFormatError(source, "must be a list of per-frame labels", entry=entry, field="occlusion")
    scores = []
    for label in occlusion:
        if label is None:
            continue
        if not isinstance(label, str) or label not in OCCLUSION_SCORES:  # a mapping is unhashable (fuzz suite)
            raise DataFormatError(source, f"unknown label {label!r} (expected one of {sorted(OCCLUSION_SCORES)})",
                                  entry=entry, field="occlusion")
        scores.append(OCCLUSION_SCORES[label])
    if not scores:
        raise DataFormatError(source, "has no non-null label", entry=entry, field="occlusion")
    scores.sort()
    top = scores[-math.ceil(len(scores) / 2):]
    return sum(top) / len(top)


def load_ground_truth(gt: str | Path | dict) -> GroundTruth:
    """Load and validate a YTVIS/OVIS GT json (path or already-parsed dict) for evaluation."""
    source, data = _read_gt_json(gt)
    videos_raw = parse_videos(Path(source), data)
    categories = sorted(parse_categories(Path(source), data), key=lambda c: int(c["id"]))
    videos = [GtVideo(v.id, v.height, v.width, v.length, v.file_names[0].split("/")[0]) for v in videos_raw]
    by_id = {v.id: v for v in videos}
    cat_ids = {int(c["id"]) for c in categories}
    anns = data.get("annotations")
    if anns is None:
        anns = []
    if not isinstance(anns, list):
        raise DataFormatError(source, "must be a list", field="annotations")
    tracks: dict[int, list[GtTrack]] = {v.id: [] for v in videos}
    occlusion_flags: list[bool] = []
    pending: list[tuple[GtTrack, int, dict]] = []  # (track, frame, rle): every run checked in one batch below
    json_areas: list[tuple[GtTrack, Any]] = []  # (track, its json ``areas``): averaged once frame areas are known
    for a, aid in unique_entries(source, anns, "annotations", "annotation"):
        entry = f"annotation {aid}"
        vid, cid = a.get("video_id"), a.get("category_id")
        if not isinstance(vid, int) or vid not in by_id:
            raise DataFormatError(source, f"unknown video id {vid!r}", entry=entry, field="video_id")
        if not isinstance(cid, int) or cid not in cat_ids:
            raise DataFormatError(source, f"unknown category id {cid!r}", entry=entry, field="category_id")
        video = by_id[vid]
        segs = a.get("segmentations")
        if not isinstance(segs, list) or len(segs) != video.length:
            raise DataFormatError(source, f"must be a list of {video.length} per-frame entries", entry=entry,
                                  field="segmentations")
        rles: list[dict | None] = []
        for t, s in enumerate(segs):
            if not s:
                rles.append(None)  # the official API skips falsy entries (null, [], {})
                continue
            try:
                rles.append(normalize_segmentation(s, video.height, video.width))
            except RLEError as exc:
                raise DataFormatError(source, f"frame {t}: {exc}", entry=entry, field="segmentations") from None
        iscrowd = flag_field(Path(source), a, "iscrowd", entry)
        occlusion = a.get("occlusion")
        occlusion_flags.append(occlusion is not None)
        occ_score = _occlusion_score(occlusion, source, entry) if occlusion is not None else None
        track = GtTrack(aid, vid, int(cid), iscrowd, rles, np.zeros(video.length, dtype=np.int64), 0.0, occ_score)
        json_areas.append((track, a.get("areas")))
        pending.extend((track, t, r) for t, r in enumerate(rles) if r is not None)
        tracks[vid].append(track)
    # A GT RLE whose runs do not add up to H*W (or has a negative run) makes pycocotools' iou/merge loop forever:
    # the same validator as the results side (spvis.data.rle_batch) checks them all before anything is scored.
    areas, errors = validate_normalized([r for _, _, r in pending])
    for (track, t, _), area, error in zip(pending, areas.tolist(), errors):
        if error is not None:
            raise DataFormatError(source, f"frame {t}: {error}", entry=f"annotation {track.id}",
                                  field="segmentations")
        track.frame_areas[t] = area
    for track, raw in json_areas:
        track.avg_area = _track_avg_area(raw, track.frame_areas, source, f"annotation {track.id}")
    has_occlusion = bool(occlusion_flags) and all(occlusion_flags)
    return GroundTruth(source, videos, categories, tracks, has_occlusion=has_occlusion)
