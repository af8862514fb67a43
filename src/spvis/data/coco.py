"""COCO instance json for pseudo-video training (DVIS/VITA ``image_instance`` datasets).

Each image becomes a short clip in ``ClipDataset`` (clip-consistent resize/crop/flip plus a monotonic
rotation per frame). Classes can be mapped through ``COCO_TO_YTVIS_2019/2021/OVIS``: annotations of
unmapped classes are dropped. A json already converted to the target categories (as the official
``coco2ytvis2019_train.json``) is recognised by its category names and used as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spvis.data.json_fields import flag_field, int_field, unique_entries
from spvis.data.png_io import check_size
from spvis.data.rle import RLEError
from spvis.data.segmentation import normalize_segmentation, validate_normalized
from spvis.data.ytvis import parse_categories
from spvis.errors import DataFormatError
from spvis.utils.json_io import read_json


@dataclass
class ImageRecord:
    """One COCO image: file name under the image root and size."""

    id: int
    file_name: str
    height: int
    width: int


@dataclass
class ImageInstance:
    """One non-crowd instance of an image: compressed RLE and its (target) category id."""

    id: int
    category_id: int  # dataset (target) category id
    rle: dict


@dataclass
class ImageDataset:
    """Images with instance masks, categories in the target dataset's id space."""

    json_path: Path
    image_root: Path | None
    images: list[ImageRecord]
    instances_by_image: dict[int, list[ImageInstance]]
    categories: list[dict]

    def __post_init__(self) -> None:
        ids = sorted(int(c["id"]) for c in self.categories)
        self.contiguous_to_dataset_id = ids
        self.dataset_to_contiguous_id = {d: i for i, d in enumerate(ids)}
        by_id = {int(c["id"]): str(c.get("name", c["id"])) for c in self.categories}
        self.class_names = [by_id[d] for d in ids]

    @property
    def num_classes(self) -> int:
        return len(self.contiguous_to_dataset_id)

    def image_path(self, image: ImageRecord) -> Path:
        root = self.image_root if self.image_root is not None else self.json_path.parent
        return Path(root) / image.file_name


def _already_converted(categories: list[dict], target: list[dict]) -> bool:
    names = {int(c["id"]): str(c.get("name", "")).lower() for c in categories}
    want = {int(c["id"]): str(c["name"]).lower() for c in target}
    return bool(names) and all(names.get(i) == n for i, n in want.items() if i in names) and set(names) <= set(want)


def load_coco_instances(json_path: str | Path, image_root: str | Path | None = None, *,
                        category_map: dict[int, int] | None = None,
                        target_categories: list[dict] | None = None) -> ImageDataset:
    """Load a COCO instance json; optionally map COCO class ids to ``target_categories`` ids."""
    path = Path(json_path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataFormatError(path, "must be a list of images", field="images")
    categories = parse_categories(path, data)
    mapping = None
    if category_map is not None and target_categories is not None and not _already_converted(categories,
                                                                                               target_categories):
        mapping = category_map
    out_categories = target_categories if target_categories is not None else categories
    known = {int(c["id"]) for c in categories}
    images: list[ImageRecord] = []
    for im, iid in unique_entries(path, data["images"], "images", "image"):
        name = im.get("file_name")
        if not isinstance(name, str):
            raise DataFormatError(path, "must be a string", entry=f"image {iid}", field="file_name")
        height = int_field(path, im, "height", f"image {iid}", positive=True)
        width = int_field(path, im, "width", f"image {iid}", positive=True)
        check_size(path, height, width, entry=f"image {iid}", field="height/width")
        images.append(ImageRecord(iid, name, height, width))
    by_id = {im.id: im for im in images}
    instances: dict[int, list[ImageInstance]] = {im.id: [] for im in images}
    pending: list[tuple[int, ImageInstance]] = []  # (image id, instance): RLE runs validated in one batch
    annotations = data.get("annotations") or []
    if not isinstance(annotations, list):
        raise DataFormatError(path, "must be a list", field="annotations")
    for a, aid in unique_entries(path, annotations, "annotations", "annotation"):
        entry = f"annotation {aid}"
        iid = int_field(path, a, "image_id", entry)
        if iid not in by_id:
            raise DataFormatError(path, f"unknown image id {iid}", entry=entry, field="image_id")
        cid = int_field(path, a, "category_id", entry)
        if cid not in known:
            raise DataFormatError(path, f"unknown category id {cid}", entry=entry, field="category_id")
        if flag_field(path, a, "iscrowd", entry):
            continue
        if mapping is not None:
            if cid not in mapping:
                continue  # class outside the target dataset
            cid = mapping[cid]
        im = by_id[iid]
        try:
            rle = normalize_segmentation(a.get("segmentation"), im.height, im.width)
        except RLEError as exc:
            raise DataFormatError(path, str(exc), entry=entry, field="segmentation") from None
        if rle is not None:
            pending.append((iid, ImageInstance(aid, cid, rle)))
    areas, errors = validate_normalized([inst.rle for _, inst in pending])
    for (iid, inst), area, error in zip(pending, areas.tolist(), errors):
        if error is not None:
            raise DataFormatError(path, error, entry=f"annotation {inst.id}", field="segmentation")
        if area > 0:
            instances[iid].append(inst)
    return ImageDataset(path, Path(image_root) if image_root is not None else None, images, instances,
                        out_categories)
