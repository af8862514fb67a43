"""VSPW video semantic segmentation (VSS): load, validate and index the DVIS layout.

Layout (reference §7): ``VSPW_480p/data/<video>/origin/<frame>.jpg``, ``data/<video>/mask/<frame>.png`` and
the split lists ``VSPW_480p/{train,val,test}.txt`` (one video name a line). Mask values (reference §5): 0 =
"others" and 255 = void, both ignored; classes 1..124 become 0..123 (``to_train_ids``). A test split may
have no mask folders. Names of the 124 classes are read from ``label_num_dic_final.json`` ({name: value})
when the root holds one, else they are ``class_<k>``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spvis.data.png_io import image_size, read_label_png
from spvis.data.video_stats import count_table, video_counts, video_summary_line
from spvis.errors import DataFormatError

VSPW_NUM_CLASSES = 124
OTHERS = 0  # raw mask value of "others" (ignored)
VOID = 255  # raw mask value of void (ignored); also the ignore value after ``to_train_ids``
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
NAMES_FILE = "label_num_dic_final.json"


@dataclass
class VSPWFrame:
    """One frame: its name (file stem), image and mask paths relative to ``data/`` (mask None without GT)."""

    name: str
    image_file: str
    mask_file: str | None


@dataclass
class VSPWVideo:
    """One video of a split: its folder name and frames in file-name order."""

    name: str
    frames: list[VSPWFrame]

    @property
    def length(self) -> int:
        return len(self.frames)


@dataclass
class VSPWDataset:
    """A loaded VSPW split (see module docstring)."""

    root: Path
    split: str
    videos: list[VSPWVideo]
    class_names: list[str]  # 124 names; index = training id (raw mask value - 1)
    has_annotations: bool

    @property
    def split_file(self) -> Path:
        return self.root / f"{self.split}.txt"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def image_path(self, frame: VSPWFrame) -> Path:
        return self.root / "data" / frame.image_file

    def mask_path(self, frame: VSPWFrame) -> Path:
        if frame.mask_file is None:
            raise DataFormatError(self.split_file, "this split has no masks", entry=f"frame {frame.name}",
                                  field="mask")
        return self.root / "data" / frame.mask_file


def to_train_ids(mask: np.ndarray) -> np.ndarray:
    """uint8 (H, W) raw VSPW values -> training ids: 1..124 -> 0..123; 0 (others), 255 (void) -> 255."""
    out = mask.astype(np.int16) - 1
    out[(mask == OTHERS) | (mask == VOID)] = VOID
    return out.astype(np.uint8)


def read_split(root: Path, split: str) -> list[str]:
    """Video names of ``<root>/<split>.txt`` (blank lines skipped; duplicates raise)."""
    path = root / f"{split}.txt"
    if not path.is_file():
        raise DataFormatError(path, f"split file not found (VSPW layout: {root}/{{train,val,test}}.txt)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"not a readable text file ({exc})") from None
    names: list[str] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        name = line.strip()
        if not name:
            continue
        if name in seen or "/" in name or name in (".", ".."):
            raise DataFormatError(path, "duplicate or invalid video name", entry=f"line {i + 1}", field=name)
        seen.add(name)
        names.append(name)
    if not names:
        raise DataFormatError(path, "lists no video")
    return names


def read_class_names(root: Path) -> list[str]:
    """Names of the 124 classes from ``label_num_dic_final.json`` ({name: raw value}) when present."""
    names = [f"class_{k}" for k in range(VSPW_NUM_CLASSES)]
    path = root / NAMES_FILE
    if not path.is_file():
        return names
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(path, f"malformed class-name file ({exc})") from None
    if not isinstance(table, dict):
        raise DataFormatError(path, "must map class names to mask values")
    for name, value in table.items():
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= VSPW_NUM_CLASSES:
            names[value - 1] = str(name)
    return names


def load_vspw(root: str | Path, split: str, *, frames: bool = True) -> VSPWDataset:
    """Load and validate a VSPW split: every listed video's frames, masks paired with images by name.

    ``frames=False`` reads only what scoring needs (the official scripts read the split list and the masks): a
    video's frames are its ``mask/*.png`` files, ``origin/`` is neither required nor looked at, and every video
    must have a mask folder. ``image_file`` then names the (possibly absent) ``origin/<frame>.jpg``.
    """
    root = Path(root)
    split_path = root / f"{split}.txt"
    if not frames:
        return _load_masks_only(root, split)
    videos: list[VSPWVideo] = []
    with_masks = 0
    for name in read_split(root, split):
        entry = f"video {name}"
        origin = root / "data" / name / "origin"
        if not origin.is_dir():
            raise DataFormatError(split_path, f"frame folder not found: {origin}", entry=entry, field="origin")
        images = sorted(p.name for p in origin.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataFormatError(split_path, f"no frames in {origin}", entry=entry, field="origin")
        mask_dir = root / "data" / name / "mask"
        masks = sorted(p.name for p in mask_dir.iterdir() if p.suffix.lower() == ".png") if mask_dir.is_dir() else None
        video_frames: list[VSPWFrame] = []
        if masks is None:
            video_frames = [VSPWFrame(Path(i).stem, f"{name}/origin/{i}", None) for i in images]
        else:
            with_masks += 1
            if len(masks) != len(images):
                raise DataFormatError(split_path, f"frame counts differ: {origin} holds {len(images)} frames, "
                                      f"{mask_dir} {len(masks)} masks", entry=entry, field="mask")
            for i, m in zip(images, masks):
                if Path(i).stem != Path(m).stem:
                    raise DataFormatError(split_path, f"frame {i} has no mask of the same name (next mask: {m})",
                                          entry=entry, field="mask")
                video_frames.append(VSPWFrame(Path(i).stem, f"{name}/origin/{i}", f"{name}/mask/{m}"))
        videos.append(VSPWVideo(name, video_frames))
    if 0 < with_masks < len(videos):
        missing = next(v.name for v in videos if v.frames[0].mask_file is None)
        raise DataFormatError(split_path, f"mask folder not found: {root / 'data' / missing / 'mask'} (other videos "
                              f"of the split have masks)", entry=f"video {missing}", field="mask")
    return VSPWDataset(root, split, videos, read_class_names(root), has_annotations=with_masks > 0)


def _load_masks_only(root: Path, split: str) -> VSPWDataset:
    """``load_vspw(frames=False)``: frames listed from each video's ``mask/*.png`` (sorted by name)."""
    split_path = root / f"{split}.txt"
    videos: list[VSPWVideo] = []
    for name in read_split(root, split):
        mask_dir = root / "data" / name / "mask"
        if not mask_dir.is_dir():
            raise DataFormatError(split_path, f"mask folder not found: {mask_dir}", entry=f"video {name}",
                                  field="mask")
        masks = sorted(p.name for p in mask_dir.iterdir() if p.suffix.lower() == ".png")
        if not masks:
            raise DataFormatError(split_path, f"no masks in {mask_dir}", entry=f"video {name}", field="mask")
        videos.append(VSPWVideo(name, [VSPWFrame(Path(m).stem, f"{name}/origin/{Path(m).stem}.jpg",
                                                 f"{name}/mask/{m}") for m in masks]))
    return VSPWDataset(root, split, videos, read_class_names(root), has_annotations=True)


def check_vspw_files(ds: VSPWDataset, *, read_files: bool = True) -> dict:
    """Read every image header and decode every mask; DataFormatError on the first problem; statistics.

    Errors: unreadable files, a mask whose size differs from its image, values that are not VSPW labels
    (0 others, 1..124 classes, 255 void). ``read_files=False`` gives the statistics of the listing alone.
    """
    lengths = [v.length for v in ds.videos]
    sizes: Counter = Counter()
    class_frames = np.zeros(VSPW_NUM_CLASSES + 1, dtype=np.int64)  # raw values 0..124: frames showing each
    others = void = pixels = 0
    for video in ds.videos if read_files else []:
        for t, frame in enumerate(video.frames):
            entry = f"video {video.name}: frame {frame.name}"
            h, w = image_size(ds.image_path(frame), entry=entry, field="origin")
            if t == 0:
                sizes[f"{h}x{w}"] += 1
            if not ds.has_annotations:
                continue
            path = ds.mask_path(frame)
            mask = read_label_png(path, entry=entry, field="mask")  # (H, W) uint8
            if mask.shape != (h, w):
                raise DataFormatError(path, f"mask is {mask.shape[0]}x{mask.shape[1]} but its image "
                                      f"{ds.image_path(frame)} is {h}x{w}", entry=entry, field="size")
            counts = np.bincount(mask.ravel(), minlength=256)  # (256,)
            bad = np.flatnonzero(counts[VSPW_NUM_CLASSES + 1:VOID])
            if bad.size:
                raise DataFormatError(path, f"value {int(bad[0]) + VSPW_NUM_CLASSES + 1} is not a VSPW label (0 "
                                      f"others, 1..{VSPW_NUM_CLASSES} classes, 255 void)", entry=entry, field="value")
            class_frames += counts[:VSPW_NUM_CLASSES + 1] > 0
            others += int(counts[OTHERS])
            void += int(counts[VOID])
            pixels += mask.size
    per_class = {ds.class_names[k - 1]: int(class_frames[k]) for k in range(1, VSPW_NUM_CLASSES + 1)
                 if class_frames[k]}
    return {
        "root": str(ds.root), "split": ds.split, "format": "vspw", **video_counts(lengths, sizes.elements()),
        "annotated": ds.has_annotations,
        "masks_read": read_files, "others_fraction": others / pixels if pixels else 0.0, "void_fraction": void / pixels if pixels else 0.0,
        "per_class_frames": per_class,
    }


def format_vspw_statistics(stats: dict) -> list[str]:
    """Human-readable lines of ``check_vspw_files``."""
    lines = [f"dataset: {stats['root']} split {stats['split']} (VSPW semantic)",
             video_summary_line(stats)]
    if not stats["annotated"]:
        lines.append("annotations: none (a test split without masks)")
        return lines
    if not stats["masks_read"]:
        lines.append("masks: listed, not read (--no-frames)")
        return lines
    lines.append(f"classes present: {len(stats['per_class_frames'])} of {VSPW_NUM_CLASSES}  pixels: others "
                 f"{100 * stats['others_fraction']:.1f}%  void {100 * stats['void_fraction']:.1f}%")
    return lines + count_table("class", ["frames"], {n: [c] for n, c in stats["per_class_frames"].items()})
