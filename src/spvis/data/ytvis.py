"""YouTube-VIS 2019/2021/2022 and OVIS json: load, validate and index a video dataset.

Format (reference §7): ``videos[{id, file_names[T], height, width, length}]``,
``annotations[{id, video_id, category_id, iscrowd, segmentations[T], bboxes[T], areas[T]}]``,
``categories[{id, name}]``. valid/test files may lack ``annotations``. Segmentations are normalised to
compressed RLE; ``areas`` are recomputed from the masks (OVIS stores box areas there). Every structural
error raises ``DataFormatError`` naming the file, the video/annotation id and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from spvis.data.json_fields import flag_field, int_field, unique_entries
from spvis.data.png_io import check_size
from spvis.data.rle import RLEError, decode_rle
from spvis.data.segmentation import normalize_segmentation, validate_normalized
from spvis.errors import DataFormatError
from spvis.utils.json_io import read_json


@dataclass
class VideoRecord:
    """One video: frame file names relative to the image root, size and length."""

    id: int
    file_names: list[str]
    height: int
    width: int
    length: int
    name: str = ""

    def as_dict(self) -> dict:
        return {"id": self.id, "file_names": list(self.file_names), "height": self.height,
                "width": self.width, "length": self.length}


@dataclass
class Track:
    """One annotated object of a video: per-frame compressed RLE (None when absent) and its category."""

    id: int
    video_id: int
    category_id: int  # dataset category id
    segmentations: list[dict | None]
    areas: list[int]
    iscrowd: int = 0
    occlusion: list[Any] | None = None

    def present(self) -> np.ndarray:
        """Bool (T,): frames where the object has a non-empty mask."""
        return np.array([s is not None and a > 0 for s, a in zip(self.segmentations, self.areas)], dtype=bool)

    def mask(self, t: int) -> np.ndarray | None:
        """Bool (H, W) mask in frame t, or None when absent."""
        rle = self.segmentations[t]
        return None if rle is None else decode_rle(rle)


@dataclass
class VideoDataset:
    """A loaded YTVIS/OVIS-format dataset (see module docstring)."""

    json_path: Path
    image_root: Path | None
    videos: list[VideoRecord]
    categories: list[dict]
    tracks_by_video: dict[int, list[Track]]
    has_annotations: bool
    raw_info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = sorted(int(c["id"]) for c in self.categories)
        self.contiguous_to_dataset_id: list[int] = ids
        self.dataset_to_contiguous_id: dict[int, int] = {d: i for i, d in enumerate(ids)}
        by_id = {int(c["id"]): str(c.get("name", c["id"])) for c in self.categories}
        self.class_names: list[str] = [by_id[d] for d in ids]
        self._video_index = {v.id: i for i, v in enumerate(self.videos)}

    @property
    def num_classes(self) -> int:
        return len(self.contiguous_to_dataset_id)

    def video(self, video_id: int) -> VideoRecord:
        """The record of ``video_id`` (DataFormatError if unknown)."""
        if video_id not in self._video_index:
            raise DataFormatError(self.json_path, "no such video", entry=f"video {video_id}")
        return self.videos[self._video_index[video_id]]

    def frame_path(self, video: VideoRecord, t: int) -> Path:
        """Path of frame ``t`` of ``video`` under the image root."""
        root = self.image_root if self.image_root is not None else self.json_path.parent
        return Path(root) / video.file_names[t]

    def tracks(self, video_id: int) -> list[Track]:
        return self.tracks_by_video.get(video_id, [])


def _path_encodable(name: str) -> bool:
    """Whether ``name`` can be a file path here: a json "\\ud800" escape decodes to a lone surrogate, which every
    os call then refuses with a UnicodeEncodeError (fuzz suite)."""
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        return False
    return True


def parse_videos(path: Path, data: dict) -> list[VideoRecord]:
    """Validated video records of a YTVIS json dict."""
    videos_raw = data.get("videos")
    if not isinstance(videos_raw, list):
        raise DataFormatError(path, "must be a list of videos", field="videos")
    videos: list[VideoRecord] = []
    for v, vid in unique_entries(path, videos_raw, "videos", "video"):
        entry = f"video {vid}"
        names = v.get("file_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise DataFormatError(path, "must be a non-empty list of frame paths", entry=entry, field="file_names")
        for name in names:
            if not _path_encodable(name):
                raise DataFormatError(path, f"frame path {name!r} is not valid unicode (a lone surrogate escape?)",
                                      entry=entry, field="file_names")
            if not name or PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() \
                    or ".." in PurePosixPath(name.replace("\\", "/")).parts or "\0" in name:
                raise DataFormatError(path, f"frame path {name!r} must be relative to the image root, without '..'",
                                      entry=entry, field="file_names")
        height = int_field(path, v, "height", entry, positive=True)
        width = int_field(path, v, "width", entry, positive=True)
        check_size(path, height, width, entry=entry, field="height/width")
        length = v.get("length", len(names))
        if length != len(names):
            raise DataFormatError(path, f"is {length} but file_names has {len(names)} frames", entry=entry,
                                  field="length")
        videos.append(VideoRecord(vid, names, height, width, len(names), str(v.get("name", ""))))
    return videos


def parse_categories(path: Path, data: dict) -> list[dict]:
    """Validated category records (unique integer ids)."""
    cats = data.get("categories")
    if not isinstance(cats, list):
        raise DataFormatError(path, "must be a list of {id, name}", field="categories")
    list(unique_entries(path, cats, "categories", "category"))  # raises on the first bad entry
    return cats


def parse_tracks(path: Path, data: dict, videos: list[VideoRecord], categories: list[dict]) -> dict[int, list[Track]]:
    """Validated tracks grouped by video id; segmentations normalised to compressed RLE."""
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise DataFormatError(path, "must be a list", field="annotations")
    by_video = {v.id: v for v in videos}
    cat_ids = {int(c["id"]) for c in categories}
    tracks: dict[int, list[Track]] = {v.id: [] for v in videos}
    pending: list[tuple[Track, int, dict]] = []  # (track, frame, rle) to validate in one batch
    for a, aid in unique_entries(path, anns, "annotations", "annotation"):
        entry = f"annotation {aid}"
        vid = int_field(path, a, "video_id", entry)
        if vid not in by_video:
            raise DataFormatError(path, f"unknown video id {vid}", entry=entry, field="video_id")
        video = by_video[vid]
        entry = f"video {vid}: annotation {aid}"
        cid = int_field(path, a, "category_id", entry)
        if cid not in cat_ids:
            raise DataFormatError(path, f"unknown category id {cid}", entry=entry, field="category_id")
        segs = a.get("segmentations")
        if not isinstance(segs, list):
            raise DataFormatError(path, "must be a list (one entry per frame)", entry=entry, field="segmentations")
        if len(segs) != video.length:
            raise DataFormatError(path, f"has {len(segs)} entries but video {vid} has {video.length} frames",
                                  entry=entry, field="segmentations")
        bboxes = a.get("bboxes")
        if bboxes is not None and (not isinstance(bboxes, list) or len(bboxes) != video.length):
            raise DataFormatError(path, f"must be a list of {video.length} boxes", entry=entry, field="bboxes")
        rles: list[dict | None] = []
        for t, s in enumerate(segs):
            try:
                rle = normalize_segmentation(s, video.height, video.width)
            except RLEError as exc:
                raise DataFormatError(path, f"frame {t}: {exc}", entry=entry, field="segmentations") from None
            if rle is not None and bboxes is not None and bboxes[t] is None:
                rle = None  # official loaders list an object only where both box and mask exist
            rles.append(rle)
        iscrowd = int(flag_field(path, a, "iscrowd", entry))
        occlusion = a.get("occlusion")
        track = Track(aid, vid, cid, rles, [0] * len(rles), iscrowd, occlusion if isinstance(occlusion, list) else None)
        pending.extend((track, t, rle) for t, rle in enumerate(rles) if rle is not None)
        tracks[vid].append(track)
    # every RLE's runs checked in one batch (the validator of the results side): a GT mask whose runs do not cover
    # H*W would make pycocotools loop forever in training and evaluation
    areas, errors = validate_normalized([r for _, _, r in pending])
    for (track, t, _), area, error in zip(pending, areas.tolist(), errors):
        if error is not None:
            raise DataFormatError(path, f"frame {t}: undecodable RLE: {error}",
                                  entry=f"video {track.video_id}: annotation {track.id}",
                                  field="segmentations")
        track.areas[t] = area
    return tracks


def load_video_dataset(json_path: str | Path, image_root: str | Path | None = None) -> VideoDataset:
    """Load and validate a YTVIS/OVIS json; ``image_root`` defaults to the json's folder."""
    path = Path(json_path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, "top level must be an object with videos/annotations/categories")
    videos = parse_videos(path, data)
    categories = parse_categories(path, data)
    has_annotations = "annotations" in data and data["annotations"] is not None
    tracks = parse_tracks(path, data, videos, categories) if has_annotations else {v.id: [] for v in videos}
    return VideoDataset(
        json_path=path,
        image_root=Path(image_root) if image_root is not None else None,
        videos=videos,
        categories=categories,
        tracks_by_video=tracks,
        has_annotations=has_annotations,
        raw_info=data.get("info", {}) if isinstance(data.get("info"), dict) else {},
    )
