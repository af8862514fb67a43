"""VIPSeg video panoptic segmentation (VPS): load, validate and index the DVIS layout.

Layout (reference §7): ``VIPSeg/VIPSeg_720P/{images,panomasksRGB}/<video>/<frame>`` and
``panoptic_gt_VIPSeg_{train,val,test}.json`` with ``videos[{video_id, images[{id, file_name, width,
height}]}]``, ``annotations[{video_id, annotations[{image_id, file_name, segments_info[{id, category_id,
iscrowd, area}]}]}]`` and ``categories[{id, name, isthing, color}]``. Segment id = R + 256 G + 256² B of
the mask PNG; id 0 is VOID. The real set has 124 classes of which 58 are things; the model's contiguous
ids put things first (``dataset_to_contiguous_id``). Errors are one-line ``DataFormatError``s naming the
file, the video, the frame and the field.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spvis.data.png_io import ID_LIMIT, check_size, image_size, read_id_png
from spvis.data.video_stats import count_table, video_counts, video_summary_line
from spvis.errors import DataFormatError
from spvis.utils.json_io import read_json

VIPSEG_NUM_CLASSES = 124
VIPSEG_NUM_THINGS = 58
VOID_ID = 0
IMAGE_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class Category:
    """A panoptic category: dataset id, name, thing (countable) or stuff, display colour."""

    id: int
    name: str
    isthing: bool
    color: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Segment:
    """One entry of a frame's ``segments_info``: PNG id, dataset category id, crowd flag, json area."""

    id: int
    category_id: int
    iscrowd: int = 0
    area: float | None = None  # pixels in this frame as the json states (required in ground truth)


@dataclass
class PanopticFrame:
    """One annotated frame: its name (file stem), image and mask paths relative to their roots, segments."""

    name: str
    image_file: str
    mask_file: str
    segments: list[Segment]
    height: int | None = None
    width: int | None = None


@dataclass
class PanopticVideo:
    """One video: folder name (= ``video_id``) and its frames in json order."""

    video_id: str
    frames: list[PanopticFrame]

    @property
    def length(self) -> int:
        return len(self.frames)


@dataclass
class PanopticDataset:
    """A loaded VIPSeg-format dataset (see module docstring)."""

    json_path: Path
    image_root: Path
    mask_root: Path
    videos: list[PanopticVideo]
    categories: list[Category]
    has_annotations: bool
    _by_id: dict[int, Category] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {c.id: c for c in self.categories}
        # things first, then stuff, each by dataset id (reference §6: contiguous ids < #things are things)
        order = sorted(self.categories, key=lambda c: (not c.isthing, c.id))
        self.contiguous_to_dataset_id: list[int] = [c.id for c in order]
        self.dataset_to_contiguous_id: dict[int, int] = {c.id: i for i, c in enumerate(order)}
        self.class_names: list[str] = [c.name for c in order]
        self.num_things: int = sum(c.isthing for c in self.categories)

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def category(self, category_id: int) -> Category:
        return self._by_id[category_id]

    def image_path(self, frame: PanopticFrame) -> Path:
        return self.image_root / frame.image_file

    def mask_path(self, frame: PanopticFrame) -> Path:
        return self.mask_root / frame.mask_file


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_categories(path: Path, data: dict) -> list[Category]:
    """Validated panoptic categories (unique integer ids, isthing 0/1)."""
    raw = data.get("categories")
    if not isinstance(raw, list) or not raw:
        raise DataFormatError(path, "must be a non-empty list of {id, name, isthing}", field="categories")
    cats: list[Category] = []
    seen: set[int] = set()
    for i, c in enumerate(raw):
        if not isinstance(c, dict):
            raise DataFormatError(path, "must be an object", entry=f"categories[{i}]")
        cid = c.get("id")
        if not _is_int(cid) or cid < 0:
            raise DataFormatError(path, f"must be a non-negative integer, got {cid!r}", entry=f"categories[{i}]",
                                  field="id")
        if cid in seen:
            raise DataFormatError(path, "duplicate category id", entry=f"category {cid}", field="id")
        seen.add(cid)
        isthing = c.get("isthing")
        if isthing not in (0, 1):  # True/False compare equal to 1/0
            raise DataFormatError(path, f"must be 0 or 1, got {isthing!r}", entry=f"category {cid}", field="isthing")
        color = c.get("color")
        color_t = tuple(int(v) for v in color) if isinstance(color, list) and len(color) == 3 else None
        cats.append(Category(cid, str(c.get("name", cid)), bool(isthing), color_t))
    return cats


def parse_segments(path: Path, raw: Any, *, entry: str, category_ids: set[int] | dict,
                   require_area: bool) -> list[Segment]:
    """Validated ``segments_info`` of one frame (ids 1..256³-1, known categories, areas when required)."""
    if not isinstance(raw, list):
        raise DataFormatError(path, "must be a list of segments", entry=entry, field="segments_info")
    segments: list[Segment] = []
    for j, s in enumerate(raw):
        where = f"{entry}: segment {j}"
        if not isinstance(s, dict):
            raise DataFormatError(path, "must be an object", entry=where, field="segments_info")
        sid = s.get("id")
        if not _is_int(sid) or not 0 <= sid < ID_LIMIT:
            raise DataFormatError(path, f"must be an integer in 1..{ID_LIMIT - 1}, got {sid!r}", entry=where,
                                  field="id")
        if sid == VOID_ID:
            raise DataFormatError(path, "id 0 is VOID (unlabelled pixels) and cannot be a segment", entry=where,
                                  field="id")
        cid = s.get("category_id")
        if not _is_int(cid) or cid not in category_ids:
            raise DataFormatError(path, f"unknown category id {cid!r}", entry=f"{entry}: segment {sid}",
                                  field="category_id")
        crowd = s.get("iscrowd", 0)
        if crowd not in (0, 1):
            raise DataFormatError(path, f"must be 0 or 1, got {crowd!r}", entry=f"{entry}: segment {sid}",
                                  field="iscrowd")
        area = s.get("area")
        if area is None:
            if require_area:
                raise DataFormatError(path, "is missing (VPQ takes ground-truth tube areas from the json)",
                                      entry=f"{entry}: segment {sid}", field="area")
        elif isinstance(area, bool) or not isinstance(area, (int, float)) or not area >= 0:
            raise DataFormatError(path, f"must be a non-negative number, got {area!r}",
                                  entry=f"{entry}: segment {sid}", field="area")
        segments.append(Segment(sid, cid, int(crowd), None if area is None else area))
    return segments


def _frame_files(video_id: str, image_name: str, mask_name: str | None) -> tuple[str, str, str]:
    """(frame name, image file, mask file) relative to the roots; json names may say .jpg or .png."""
    stem = Path(image_name).stem
    image = image_name if Path(image_name).suffix.lower() in IMAGE_SUFFIXES else f"{stem}.jpg"
    mask = mask_name if mask_name else f"{stem}.png"
    return stem, f"{video_id}/{image}", f"{video_id}/{mask}"


def parse_videos(path: Path, data: dict, categories: list[Category]) -> tuple[list[PanopticVideo], bool]:
    """Validated videos with their per-frame segments; the flag says whether the json has annotations."""
    raw_videos = data.get("videos")
    if not isinstance(raw_videos, list):
        raise DataFormatError(path, "must be a list of {video_id, images}", field="videos")
    has_annotations = data.get("annotations") is not None
    by_video: dict[str, list] = {}
    if has_annotations:
        anns = data["annotations"]
        if not isinstance(anns, list):
            raise DataFormatError(path, "must be a list of {video_id, annotations}", field="annotations")
        for i, a in enumerate(anns):
            if not isinstance(a, dict) or not isinstance(a.get("annotations"), list):
                raise DataFormatError(path, "must be an object with a list 'annotations'", entry=f"annotations[{i}]")
            vid = str(a.get("video_id"))
            if vid in by_video:
                raise DataFormatError(path, "two annotation entries for this video", entry=f"video {vid}",
                                      field="video_id")
            by_video[vid] = a["annotations"]
    cat_ids = {c.id for c in categories}
    videos: list[PanopticVideo] = []
    seen: set[str] = set()
    for i, v in enumerate(raw_videos):
        if not isinstance(v, dict) or v.get("video_id") is None:
            raise DataFormatError(path, "must be an object with 'video_id' and 'images'", entry=f"videos[{i}]")
        vid = str(v["video_id"])
        entry = f"video {vid}"
        if vid in seen:
            raise DataFormatError(path, "duplicate video id", entry=entry, field="video_id")
        seen.add(vid)
        images = v.get("images")
        if not isinstance(images, list) or not images:
            raise DataFormatError(path, "must be a non-empty list of frames", entry=entry, field="images")
        frames_ann = by_video.pop(vid, None) if has_annotations else None
        if has_annotations and frames_ann is None:
            raise DataFormatError(path, "no entry in 'annotations' for this video", entry=entry, field="annotations")
        if frames_ann is not None and len(frames_ann) != len(images):
            raise DataFormatError(path, f"frame counts differ: 'images' lists {len(images)} frames, 'annotations' "
                                  f"{len(frames_ann)}", entry=entry, field="annotations")
        frames: list[PanopticFrame] = []
        for t, im in enumerate(images):
            name = im.get("file_name") if isinstance(im, dict) else None
            if not isinstance(name, str) or not name:
                raise DataFormatError(path, "must be a frame file name", entry=f"{entry}: images[{t}]",
                                      field="file_name")
            h, w = im.get("height"), im.get("width")
            where = f"{entry}: frame {Path(name).stem}"
            if h is not None or w is not None:
                if not (_is_int(h) and _is_int(w)):
                    raise DataFormatError(path, f"must be integers, got {h!r}x{w!r}", entry=where, field="height/width")
                check_size(path, h, w, entry=where, field="height/width")
            segments: list[Segment] = []
            mask_name = None
            if frames_ann is not None:
                fa = frames_ann[t]
                if not isinstance(fa, dict):
                    raise DataFormatError(path, "must be an object", entry=f"{entry}: annotations[{t}]")
                mask_name = fa.get("file_name") if isinstance(fa.get("file_name"), str) else None
                segments = parse_segments(path, fa.get("segments_info"), entry=where, category_ids=cat_ids,
                                          require_area=True)
            stem, image_file, mask_file = _frame_files(vid, name, mask_name)
            frames.append(PanopticFrame(stem, image_file, mask_file, segments, h, w))
        videos.append(PanopticVideo(vid, frames))
    if by_video:
        extra = next(iter(by_video))
        raise DataFormatError(path, "annotations for a video that 'videos' does not list", entry=f"video {extra}",
                              field="annotations")
    return videos, has_annotations


def load_vipseg(json_path: str | Path, image_root: str | Path | None = None,
                mask_root: str | Path | None = None) -> PanopticDataset:
    """Load and validate a VIPSeg panoptic json; roots default to ``images/`` and ``panomasksRGB/`` beside it."""
    path = Path(json_path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, "top level must be an object with videos/annotations/categories")
    categories = parse_categories(path, data)
    videos, has_annotations = parse_videos(path, data, categories)
    return PanopticDataset(
        json_path=path,
        image_root=Path(image_root) if image_root is not None else path.parent / "images",
        mask_root=Path(mask_root) if mask_root is not None else path.parent / "panomasksRGB",
        videos=videos, categories=categories, has_annotations=has_annotations)


def check_vipseg_files(ds: PanopticDataset) -> dict:
    """Read every image header and decode every mask; DataFormatError on the first problem; statistics.

    Errors: missing/unreadable files, frame counts that differ between the json and a mask folder, a mask
    whose size differs from its image (or from the json's width/height), a PNG id the frame's json does not
    list. Json ids absent from their PNG and json areas that differ from the PNG are counted, not raised.
    """
    stats = panoptic_statistics(ds)
    if not ds.has_annotations:
        for video in ds.videos:
            for frame in video.frames:
                image_size(ds.image_path(frame), entry=f"video {video.video_id}: frame {frame.name}", field="image")
        return stats
    absent = area_mismatch = 0
    for video in ds.videos:
        folder = ds.mask_root / video.video_id
        if not folder.is_dir():
            raise DataFormatError(ds.json_path, f"mask folder not found: {folder}", entry=f"video {video.video_id}",
                                  field="panomasksRGB")
        on_disk = sum(1 for p in folder.iterdir() if p.suffix.lower() == ".png")
        if on_disk != video.length:
            raise DataFormatError(ds.json_path, f"frame counts differ: the json lists {video.length} frames, "
                                  f"{folder} holds {on_disk} PNGs", entry=f"video {video.video_id}", field="images")
        for frame in video.frames:
            entry = f"video {video.video_id}: frame {frame.name}"
            ih, iw = image_size(ds.image_path(frame), entry=entry, field="image")
            if frame.height is not None and (frame.height, frame.width) != (ih, iw):
                raise DataFormatError(ds.json_path, f"is {frame.height}x{frame.width} but the image "
                                      f"{ds.image_path(frame)} is {ih}x{iw}", entry=entry, field="height/width")
            mask_path = ds.mask_path(frame)
            ids = read_id_png(mask_path, entry=entry, field="mask")  # (H, W) uint32
            if ids.shape != (ih, iw):
                raise DataFormatError(mask_path, f"mask is {ids.shape[0]}x{ids.shape[1]} but its image "
                                      f"{ds.image_path(frame)} is {ih}x{iw}", entry=entry, field="size")
            values, counts = _unique_counts(ids)
            listed: dict[int, float] = {}
            for s in frame.segments:
                listed[s.id] = listed.get(s.id, 0) + float(s.area or 0)
            for value in values.tolist():
                if value != VOID_ID and value not in listed:
                    raise DataFormatError(mask_path, f"segment id {value} is in the PNG but not in the json "
                                          f"({ds.json_path.name})", entry=entry, field="segments_info")
            present = dict(zip(values.tolist(), counts.tolist()))
            for sid, area in listed.items():
                if sid not in present:
                    absent += 1
                elif present[sid] != area:
                    area_mismatch += 1
    stats["listed_segments_absent_from_png"] = absent
    stats["json_areas_differing_from_png"] = area_mismatch
    return stats


def _unique_counts(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of (H, W) ids and their pixel counts; equal runs along rows are collapsed before sorting."""
    flat = ids.ravel()
    if flat.size == 0:
        return flat, flat.astype(np.int64)
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    values, inverse = np.unique(flat[starts], return_inverse=True)
    return values, np.bincount(inverse.ravel(), weights=np.diff(np.append(starts, flat.size))).astype(np.int64)


def panoptic_statistics(ds: PanopticDataset) -> dict:
    """Counts of videos, frames, segments, tubes (distinct ids per video), crowd segments, per category."""
    per_cat_tubes: Counter = Counter()
    segments = crowd = tubes = 0
    for video in ds.videos:
        first_cat: dict[int, int] = {}
        for frame in video.frames:
            for s in frame.segments:
                segments += 1
                crowd += s.iscrowd
                first_cat.setdefault(s.id, s.category_id)
        tubes += len(first_cat)
        per_cat_tubes.update(ds.category(c).name for c in first_cat.values())
    return {
        "json": str(ds.json_path), "format": "vipseg", **video_counts(
            [v.length for v in ds.videos],
            (f"{f.height}x{f.width}" for v in ds.videos for f in v.frames[:1] if f.height is not None)),
        "categories": ds.num_classes, "things": ds.num_things,
        "annotated": ds.has_annotations, "segments": segments, "tubes": tubes, "crowd_segments": crowd,
        "per_category": {name: per_cat_tubes[name] for name in ds.class_names if per_cat_tubes[name]},
    }


def format_panoptic_statistics(stats: dict, image_root: Path, mask_root: Path) -> list[str]:
    """Human-readable lines of ``check_vipseg_files`` / ``panoptic_statistics``."""
    lines = [f"dataset: {stats['json']} (VIPSeg panoptic; images under {image_root}, masks under {mask_root})",
             video_summary_line(stats),
             f"categories: {stats['categories']} ({stats['things']} things, {stats['categories'] - stats['things']} "
             f"stuff)"]
    if not stats["annotated"]:
        lines.append("annotations: none (a test split without ground truth)")
        return lines
    lines.append(f"segments: {stats['segments']}  tubes (ids per video): {stats['tubes']}  crowd segments: "
                 f"{stats['crowd_segments']}")
    for key, text in (("listed_segments_absent_from_png", "json segments absent from their PNG"),
                      ("json_areas_differing_from_png", "json areas that differ from the PNG pixel count")):
        if stats.get(key):
            lines.append(f"warning: {stats[key]} {text}")
    return lines + count_table("category", ["tubes"], {n: [c] for n, c in stats["per_category"].items()})
