"""Dataset registry: builtin names in the official layout, user datasets, and plain json paths.

Builtin datasets resolve under ``$SPVIS_DATASETS``, else ``$DETECTRON2_DATASETS``, else ``./datasets``
(layouts of reference §7). User datasets are registered from Python (``register_dataset``) or from
``cfg.DATASETS.REGISTER`` (list of ``{name, json, image_root}``). A json path is accepted anywhere a
name is; its image root defaults to ``<json dir>/<json stem>/JPEGImages`` (the ``spvis synth`` layout).
Video panoptic / semantic sets: ``vipseg_{train,val,test}`` (kind vipseg: the json, ``images/`` and
``panomasksRGB/`` beside it) and ``vspw_{train,val,test}`` (kind vspw: the split file ``VSPW_480p/<split>.txt``);
a VIPSeg json path (named ``panoptic*`` / ``*vipseg*``, or with ``segments_info`` near its start) or a VSPW
split file path resolves to those kinds too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spvis.data.categories import CATEGORY_SETS, COCO_MAPS, categories_from_names
from spvis.errors import SpvisError


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and how to read it (``kind`` video = YTVIS json, image = COCO json, vipseg =
    VIPSeg panoptic json, vspw = VSPW split file)."""

    name: str
    json: Path
    image_root: Path | None
    kind: str = "video"
    category_set: str | None = None  # builtin category list this dataset maps into
    mask_root: Path | None = None  # vipseg: the panomasksRGB folder


def datasets_root() -> Path:
    """The root of builtin datasets: $SPVIS_DATASETS, else $DETECTRON2_DATASETS, else ./datasets."""
    return Path(os.environ.get("SPVIS_DATASETS") or os.environ.get("DETECTRON2_DATASETS") or "datasets")


# name -> (json relative to the root, image root relative to the root, kind, category set)
_BUILTIN: dict[str, tuple[str, str, str, str]] = {}
for _year in ("2019", "2021"):
    for _split, _folder in (("train", "train"), ("val", "valid"), ("test", "test")):
        _BUILTIN[f"ytvis_{_year}_{_split}"] = (f"ytvis_{_year}/{_folder}.json", f"ytvis_{_year}/{_folder}/JPEGImages",
                                              "video", f"ytvis_{_year}")
_BUILTIN["ytvis_2022_val"] = ("ytvis_2022/valid.json", "ytvis_2022/valid/JPEGImages", "video", "ytvis_2022")
_BUILTIN["ytvis_2022_train"] = ("ytvis_2021/train.json", "ytvis_2021/train/JPEGImages", "video", "ytvis_2022")
for _split, _folder in (("train", "train"), ("val", "valid"), ("test", "test")):
    _BUILTIN[f"ovis_{_split}"] = (f"ovis/annotations/annotations_{_folder}.json", f"ovis/{_folder}", "video", "ovis")
_BUILTIN["coco2ytvis2019_train"] = ("coco/annotations/coco2ytvis2019_train.json", "coco/train2017", "image",
                                    "ytvis_2019")
_BUILTIN["coco2ytvis2019_val"] = ("coco/annotations/coco2ytvis2019_val.json", "coco/val2017", "image", "ytvis_2019")
_BUILTIN["coco2ytvis2021_train"] = ("coco/annotations/coco2ytvis2021_train.json", "coco/train2017", "image",
                                    "ytvis_2021")
_BUILTIN["coco2ytvis2021_val"] = ("coco/annotations/coco2ytvis2021_val.json", "coco/val2017", "image", "ytvis_2021")
_BUILTIN["coco2ovis_train"] = ("coco/annotations/coco2ovis_train.json", "coco/train2017", "image", "ovis")
_BUILTIN["coco2ovis_val"] = ("coco/annotations/coco2ovis_val.json", "coco/val2017", "image", "ovis")

for _split in ("train", "val", "test"):
    _BUILTIN[f"vipseg_{_split}"] = (f"VIPSeg/VIPSeg_720P/panoptic_gt_VIPSeg_{_split}.json", "VIPSeg/VIPSeg_720P/images",
                                    "vipseg", "")
    _BUILTIN[f"vspw_{_split}"] = (f"VSPW_480p/{_split}.txt", "VSPW_480p/data", "vspw", "")

BUILTIN_NAMES = tuple(sorted(_BUILTIN))
KINDS = ("video", "image", "vipseg", "vspw")

_USER: dict[str, DatasetSpec] = {}


def register_dataset(name: str, json: str | Path, image_root: str | Path | None = None, *,
                     kind: str = "video", category_set: str | None = None) -> DatasetSpec:
    """Register a user dataset (YTVIS-format json, or COCO json with kind='image') under ``name``."""
    if name in _BUILTIN:
        raise SpvisError(f"dataset name {name!r} is a builtin dataset; choose another name")
    if kind not in KINDS:
        raise SpvisError(f"dataset {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    spec = DatasetSpec(name, Path(json), Path(image_root) if image_root else None, kind, category_set,
                       Path(json).parent / "panomasksRGB" if kind == "vipseg" else None)
    _USER[name] = spec
    return spec


def register_from_config(cfg: Any) -> list[str]:
    """Register every entry of ``cfg.DATASETS.REGISTER`` ({name, json, image_root[, kind, category_set]}).

    ``kind: image`` marks a COCO instance json (pseudo-videos); ``category_set`` (ytvis_2019, ytvis_2021,
    ovis) maps its COCO class ids into that dataset's categories. Returns the registered names.
    """
    names = []
    for i, entry in enumerate(cfg.DATASETS.REGISTER):
        if not isinstance(entry, dict) or "name" not in entry or "json" not in entry:
            raise SpvisError(f"config DATASETS.REGISTER[{i}] must be a mapping with 'name', 'json' and "
                             f"'image_root', got {entry!r}")
        category_set = entry.get("category_set")
        if category_set is not None and category_set not in CATEGORY_SETS:
            raise SpvisError(f"config DATASETS.REGISTER[{i}]: category_set must be one of {sorted(CATEGORY_SETS)}, "
                             f"got {category_set!r}")
        register_dataset(str(entry["name"]), entry["json"], entry.get("image_root"),
                         kind=str(entry.get("kind", "video")), category_set=category_set)
        names.append(str(entry["name"]))
    return names


def default_image_root(json_path: Path) -> Path:
    """``<dir>/<stem>/JPEGImages`` when it exists (spvis synth / YTVIS layout), else the json's folder."""
    for candidate in (json_path.parent / json_path.stem / "JPEGImages", json_path.parent / "JPEGImages"):
        if candidate.is_dir():
            return candidate
    return json_path.parent


def looks_like_vipseg(path: Path) -> bool:
    """A VIPSeg panoptic json: named ``panoptic*`` / ``*vipseg*``, or its first MiB holds ``segments_info`` or a
    string ``video_id`` (YTVIS ids are integers)."""
    name = path.name.lower()
    if name.startswith("panoptic") or "vipseg" in name:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError:
        return False
    return b'"segments_info"' in head or re.search(rb'"video_id"\s*:\s*"', head) is not None


def resolve_dataset(name_or_json: str | Path, image_root: str | Path | None = None,
                    cfg: Any = None) -> DatasetSpec:
    """A ``DatasetSpec`` for a user name, a builtin name or a json path (SpvisError if none fits)."""
    if cfg is not None:
        register_from_config(cfg)
    key = str(name_or_json)
    if key in _USER:
        spec = _USER[key]
        if image_root is not None:
            spec = DatasetSpec(spec.name, spec.json, Path(image_root), spec.kind, spec.category_set)
        return spec
    if key in _BUILTIN:
        rel_json, rel_root, kind, cats = _BUILTIN[key]
        root = datasets_root()
        json_path = root / rel_json
        if not json_path.is_file():
            raise SpvisError(f"dataset {key}: {json_path} not found (set $SPVIS_DATASETS to the folder holding "
                             f"{rel_json.split('/')[0]}/)")
        return DatasetSpec(key, json_path, Path(image_root) if image_root else root / rel_root, kind, cats or None,
                           json_path.parent / "panomasksRGB" if kind == "vipseg" else None)
    path = Path(key)
    if path.suffix.lower() == ".txt" or (path.is_dir() and (path / "data").is_dir()):
        if path.is_dir():
            raise SpvisError(f"{path}: a VSPW root; give its split file ({path}/val.txt) or --split")
        if not path.is_file():
            raise SpvisError(f"{path}: VSPW split file not found")
        return DatasetSpec(f"vspw_{path.stem}", path, Path(image_root) if image_root else path.parent / "data", "vspw")
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise SpvisError(f"{path}: dataset json not found")
        if looks_like_vipseg(path):
            return DatasetSpec(path.stem, path, Path(image_root) if image_root else path.parent / "images", "vipseg",
                               None, path.parent / "panomasksRGB")
        return DatasetSpec(path.stem, path, Path(image_root) if image_root else default_image_root(path), "video")
    known = ", ".join(sorted(_USER)) or "none"
    raise SpvisError(f"unknown dataset {key!r}: not a json file, a builtin name ({', '.join(BUILTIN_NAMES[:4])}, "
                     f"...) or a registered name (registered: {known})")


def load_dataset(spec: DatasetSpec):
    """Load a resolved dataset: a ``VideoDataset`` (kind video), an ``ImageDataset`` (kind image), a
    ``PanopticDataset`` (kind vipseg) or a ``VSPWDataset`` (kind vspw)."""
    if spec.kind == "vipseg":
        from spvis.data.vipseg import load_vipseg

        return load_vipseg(spec.json, spec.image_root, spec.mask_root)
    if spec.kind == "vspw":
        from spvis.data.vspw import load_vspw

        return load_vspw(spec.json.parent, spec.json.stem)
    if spec.kind == "image":
        from spvis.data.coco import load_coco_instances

        target = categories_from_names(CATEGORY_SETS[spec.category_set]) if spec.category_set else None
        cmap = COCO_MAPS.get(spec.category_set or "")
        return load_coco_instances(spec.json, spec.image_root, category_map=cmap, target_categories=target)
    from spvis.data.ytvis import load_video_dataset

    return load_video_dataset(spec.json, spec.image_root)
