"""Dataset registry: builtin names under $SPVIS_DATASETS / $DETECTRON2_DATASETS / ./datasets, user names, json paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spvis.config import get_cfg
from spvis.data.catalog import BUILTIN_NAMES, load_dataset, register_dataset, resolve_dataset
from spvis.data.coco import ImageDataset
from spvis.data.ytvis import VideoDataset
from spvis.errors import SpvisError

DATA = Path(__file__).parent / "data"


def test_builtin_names_cover_the_official_sets():
    for name in ("ytvis_2019_train", "ytvis_2019_val", "ytvis_2021_train", "ytvis_2021_val", "ytvis_2022_val",
                 "ovis_train", "ovis_val", "coco2ytvis2019_train", "coco2ytvis2021_train", "coco2ovis_train"):
        assert name in BUILTIN_NAMES


def test_builtin_resolves_under_env_roots(tmp_path, monkeypatch):
    ovis = tmp_path / "ovis" / "annotations"
    ovis.mkdir(parents=True)
    shutil.copy(DATA / "annotations_only" / "ovis_85aa3b0e_3frames.json", ovis / "annotations_train.json")
    monkeypatch.delenv("SPVIS_DATASETS", raising=False)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    spec = resolve_dataset("ovis_train")
    assert spec.json == ovis / "annotations_train.json" and spec.image_root == tmp_path / "ovis" / "train"
    ds = load_dataset(spec)
    assert isinstance(ds, VideoDataset) and ds.num_classes == 25
    track = ds.tracks(ds.videos[0].id)[0]
    assert track.areas[0] < 6377 * 2 and track.areas[0] > 0  # recomputed mask area, not the box area
    monkeypatch.setenv("SPVIS_DATASETS", str(tmp_path / "elsewhere"))  # takes precedence
    with pytest.raises(SpvisError, match=r"dataset ovis_train: .*elsewhere.*annotations_train\.json not found"):
        resolve_dataset("ovis_train")


def test_ovis_areas_are_recomputed_from_masks():
    from spvis.data.ytvis import load_video_dataset
    import json

    raw = json.loads((DATA / "annotations_only" / "ovis_85aa3b0e_3frames.json").read_text())
    ds = load_video_dataset(DATA / "annotations_only" / "ovis_85aa3b0e_3frames.json")
    first = raw["annotations"][0]
    track = next(t for t in ds.tracks(first["video_id"]) if t.id == first["id"])
    box = first["bboxes"][0]
    assert first["areas"][0] == pytest.approx(box[2] * box[3], rel=0.02)  # the OVIS quirk
    assert track.areas[0] == int(track.mask(0).sum()) and track.areas[0] < first["areas"][0]


def test_coco_builtin_maps_categories(tmp_path, monkeypatch):
    ann = tmp_path / "coco" / "annotations"
    ann.mkdir(parents=True)
    shutil.copy(DATA / "coco_mini" / "instances.json", ann / "coco2ovis_train.json")
    monkeypatch.setenv("SPVIS_DATASETS", str(tmp_path))
    ds = load_dataset(resolve_dataset("coco2ovis_train"))
    assert isinstance(ds, ImageDataset) and ds.num_classes == 25
    assert len(ds.class_names) == 25 and ds.class_names[0] == "Person"
    # coco-mini ids are renumbered (1 person, 2 elephant, 3 sports ball): through COCO_TO_OVIS 1->1, 2->21, 3->25
    cats = sorted(i.category_id for insts in ds.instances_by_image.values() for i in insts)
    assert cats == [1, 21, 25]


def test_user_registration_and_json_paths(tmp_path):
    spec = register_dataset("davis_user_test", DATA / "davis_mini" / "ytvis_gt.json",
                            DATA / "davis_mini" / "JPEGImages" / "480p")
    assert resolve_dataset("davis_user_test") == spec
    with pytest.raises(SpvisError, match="builtin"):
        register_dataset("ytvis_2019_train", "x.json")
    cfg = get_cfg()
    cfg.DATASETS.REGISTER = [{"name": "cfg_user", "json": str(DATA / "davis_mini" / "ytvis_gt.json")}]
    assert resolve_dataset("cfg_user", cfg=cfg).json.name == "ytvis_gt.json"
    cfg.DATASETS.REGISTER = [{"json": "x.json"}]
    with pytest.raises(SpvisError, match=r"DATASETS.REGISTER\[0\]"):
        resolve_dataset("cfg_user", cfg=cfg)
    direct = resolve_dataset(DATA / "davis_mini" / "ytvis_gt.json")
    assert direct.kind == "video" and direct.json.is_file()
    with pytest.raises(SpvisError, match="unknown dataset 'no_such_set'"):
        resolve_dataset("no_such_set")
    with pytest.raises(SpvisError, match="missing.json: dataset json not found"):
        resolve_dataset(tmp_path / "missing.json")


def test_real_uncompressed_rle_and_polygons_are_normalised(tmp_path):
    """A real YouTube-VIS mask stored as uncompressed RLE (mmtracking CocoVID file), re-wrapped as a YTVIS video,
    and a real COCO polygon: both load as compressed RLE with the pixels pycocotools decodes."""
    import json

    import numpy as np
    from pycocotools import mask as mask_utils

    from spvis.data.ytvis import load_video_dataset

    cocovid = json.loads((DATA / "annotations_only" / "ytvis_0043f083b5_frame0_cocovid.json").read_text())
    ann, image = cocovid["annotations"][0], cocovid["images"][0]
    coco = json.loads((DATA / "coco_mini" / "instances.json").read_text())
    poly = next(a for a in coco["annotations"] if isinstance(a["segmentation"], list))
    data = {"videos": [{"id": 1, "file_names": [image["file_name"], image["file_name"]], "height": 720,
                        "width": 1280, "length": 2}],
            "categories": cocovid["categories"],
            "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentations": [ann["segmentation"], poly["segmentation"]]}]}
    path = tmp_path / "ytvis.json"
    path.write_text(json.dumps(data))
    track = load_video_dataset(path).tracks(1)[0]
    expected = mask_utils.decode(mask_utils.frPyObjects(ann["segmentation"], 720, 1280)).astype(bool)
    assert isinstance(track.segmentations[0]["counts"], bytes)
    assert np.array_equal(track.mask(0), expected) and track.areas[0] == int(expected.sum()) > 0
    x, y, w, h = (float(v) for v in mask_utils.toBbox(track.segmentations[0]))
    assert [x, y, w, h] == [float(v) for v in ann["bbox"]]
    poly_mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly["segmentation"], 720, 1280)))
    assert np.array_equal(track.mask(1), poly_mask.astype(bool)) and track.areas[1] > 0
