"""Clip sampling, clip-consistent transforms, ClipDataset items and the train loader (real DAVIS/COCO samples)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spvis.config import get_cfg
from spvis.data.clip_dataset import ClipDataset, collate_clips
from spvis.data.coco import load_coco_instances
from spvis.data.loader import InfiniteClipSampler, build_train_loader
from spvis.data.rle import decode_rle, encode_mask
from spvis.data.sampling import monotonic_angles, select_frames
from spvis.data.transforms import apply_image, apply_masks, sample_clip_transform
from spvis.data.ytvis import load_video_dataset
from spvis.errors import DataFormatError, SpvisError
from spvis.modeling.preprocessing import resized_shape

DATA = Path(__file__).parent / "data"
DAVIS_JSON = DATA / "davis_mini" / "ytvis_gt.json"
DAVIS_ROOT = DATA / "davis_mini" / "JPEGImages" / "480p"


def _tiny_video_dataset(tmp_path: Path) -> Path:
    """4-frame 40x48 video: object 10 present in frames 0-1 only, object 11 in frames 1-3."""
    root = tmp_path / "imgs"
    (root / "v").mkdir(parents=True)
    names = []
    for t in range(4):
        Image.fromarray(np.full((40, 48, 3), 30 * t, dtype=np.uint8)).save(root / "v" / f"{t}.png")
        names.append(f"v/{t}.png")
    segs_a, segs_b = [], []
    for t in range(4):
        a = np.zeros((40, 48), dtype=bool)
        a[2:10, 2 + t:12 + t] = True
        b = np.zeros((40, 48), dtype=bool)
        b[20:30, 30:40] = True
        segs_a.append(encode_mask(a) if t < 2 else None)
        segs_b.append(encode_mask(b) if t >= 1 else None)
    data = {"videos": [{"id": 5, "file_names": names, "height": 40, "width": 48, "length": 4}],
            "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
            "annotations": [{"id": 10, "video_id": 5, "category_id": 7, "iscrowd": 0, "segmentations": segs_a},
                            {"id": 11, "video_id": 5, "category_id": 3, "iscrowd": 0, "segmentations": segs_b}]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------ sampling
def test_select_frames_consecutive_reaches_every_window():
    rng = np.random.default_rng(0)
    starts = {select_frames(rng, 10, 5, 2)[0] for _ in range(300)}
    assert starts == set(range(6))  # windows 0..5, the last one included


def test_select_frames_short_video_repeats_and_range():
    rng = np.random.default_rng(1)
    idx = select_frames(rng, 3, 5, 2)
    assert len(idx) == 5 and set(idx) == {0, 1, 2} and idx == sorted(idx)
    for _ in range(50):
        idx = select_frames(rng, 40, 3, 4)
        assert len(set(idx)) == 3 and max(idx) - min(idx) <= 8 and idx == sorted(idx)


def test_select_frames_reverse_happens_sometimes():
    rng = np.random.default_rng(2)
    orders = {tuple(select_frames(rng, 10, 3, 1, reverse=True)) for _ in range(50)}
    assert any(o[0] > o[-1] for o in orders) and any(o[0] < o[-1] for o in orders)


def test_monotonic_angles():
    a = monotonic_angles(np.random.default_rng(0), 6, 15.0)
    assert all(abs(x) <= 15 for x in a)
    assert a == sorted(a) or a == sorted(a, reverse=True)


# ------------------------------------------------------------------ transforms
def test_resize_shortest_edge_rounds_like_detectron2():
    assert resized_shape(480, 854, 360, 1333) == (360, 641)
    assert resized_shape(480, 854, 480, 768) == (432, 768)  # longest edge capped


def test_transform_is_clip_consistent_and_flips_masks():
    rng = np.random.default_rng(3)
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    masks = np.zeros((1, 60, 80), dtype=bool)
    masks[0, 10:30, 0:20] = True  # left side
    for _ in range(20):
        tf = sample_clip_transform(rng, 60, 80, min_sizes=[30, 40], max_size=100, flip=True, crop=True,
                                   crop_pre_sizes=[60], crop_size=[30, 50])
        a, b = apply_image(image, tf), apply_image(image.copy(), tf)
        assert np.array_equal(a, b) and a.shape == (tf.out_h, tf.out_w, 3)
        m = apply_masks(masks, tf)
        assert m.shape == (1, tf.out_h, tf.out_w)
    tf = sample_clip_transform(None, 60, 80, min_sizes=[60], max_size=1000)
    assert (tf.out_h, tf.out_w, tf.flip) == (60, 80, False)
    flipped = apply_masks(masks, type(tf)(tf.crop, tf.out_h, tf.out_w, True))
    assert flipped[0, 10:30, 60:80].all() and not flipped[0, :, :60].any()


# ------------------------------------------------------------------ ClipDataset on real DAVIS frames
def test_clip_items_match_interfaces_and_ground_truth():
    ds = load_video_dataset(DAVIS_JSON, DAVIS_ROOT)
    clips = ClipDataset(ds, frame_num=3, frame_range=1, min_sizes=[480], max_size=10000, is_train=False)
    item = clips[0]
    T, H, W = 3, 480, 854
    assert item["frames"].shape == (T, 3, H, W) and item["frames"].dtype == torch.uint8
    assert item["masks"].shape == (T, 1, H, W) and item["masks"].dtype == torch.bool
    assert item["labels"].dtype == torch.int64 and item["labels"].tolist() == [0]
    assert item["ids"].tolist() == [ds.tracks(1)[0].id] and item["present"].all()
    assert item["frame_indices"] == [0, 1, 2] and item["video_id"] == 1
    gt = decode_rle(ds.tracks(1)[0].segmentations[2])
    assert np.array_equal(item["masks"][2, 0].numpy(), gt)
    pixels = np.asarray(Image.open(DAVIS_ROOT / ds.videos[0].file_names[1]).convert("RGB"))
    assert np.array_equal(item["frames"][1].permute(1, 2, 0).numpy(), pixels)


def test_clip_training_items_are_deterministic_and_augmented():
    ds = load_video_dataset(DAVIS_JSON, DAVIS_ROOT)
    clips = ClipDataset(ds, frame_num=2, frame_range=2, min_sizes=[96, 128], max_size=256, flip=True, crop=True,
                        crop_pre_sizes=[200], crop_size=[100, 150], seed=4)
    a, b = clips[7], clips[7]
    assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["masks"], b["masks"])
    shapes = {tuple(clips[i]["frames"].shape[2:]) for i in range(8)}
    assert len(shapes) > 1 and all(min(s) in (96, 128) or max(s) == 256 for s in shapes)
    for i in range(4):
        it = clips[i]
        assert it["masks"].shape[:2] == it["present"].shape
        assert torch.equal(it["present"], it["masks"].flatten(2).any(-1))


def test_absent_identity_has_empty_mask_and_false_presence(tmp_path):
    ds = load_video_dataset(_tiny_video_dataset(tmp_path), tmp_path / "imgs")
    clips = ClipDataset(ds, frame_num=4, frame_range=2, min_sizes=[40], max_size=1000, is_train=False)
    item = clips[0]
    assert item["ids"].tolist() == [10, 11]
    assert item["labels"].tolist() == [1, 0]  # dataset ids 7, 3 -> contiguous 1, 0
    assert item["present"].tolist() == [[True, False], [True, True], [False, True], [False, True]]
    assert not item["masks"][3, 0].any() and item["masks"][3, 1].sum() == 100
    tail = ClipDataset(ds, frame_num=1, frame_range=0, min_sizes=[40], max_size=1000, is_train=True, seed=0)
    for i in range(10):
        it = tail[i]  # one frame: only identities visible in that frame are kept
        assert it["present"].all() and it["ids"].numel() in (1, 2)


def test_missing_frame_names_the_json_and_video(tmp_path):
    path = _tiny_video_dataset(tmp_path)
    (tmp_path / "imgs" / "v" / "2.png").unlink()
    ds = load_video_dataset(path, tmp_path / "imgs")
    clips = ClipDataset(ds, frame_num=4, frame_range=2, is_train=False, min_sizes=[40])
    with pytest.raises(DataFormatError, match=r"tiny\.json: video 5: field 'file_names': frame file not found"):
        clips[0]


# ------------------------------------------------------------------ COCO pseudo-videos
def test_coco_pseudo_video_rotates_consistently():
    co = load_coco_instances(DATA / "coco_mini" / "instances.json", DATA / "coco_mini" / "images")
    assert co.class_names == ["kite", "person", "elephant", "sports ball"]
    clips = ClipDataset(co, frame_num=4, min_sizes=[120], max_size=400, rotation=15.0, seed=1)
    item = clips[1]  # 000000036086.jpg: person + sports ball
    assert item["frames"].shape[:2] == (4, 3) and item["masks"].shape[0] == 4
    assert sorted(item["labels"].tolist()) == sorted([1, 3][: item["labels"].numel()])


def test_coco_pseudo_video_masks_rotate_with_their_frames(tmp_path):
    """A white square off the rotation centre on a black image: in every frame of the pseudo-video the mask
    must cover exactly the white pixels (it rotates with the frame), while the frames really do rotate."""
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    image[10:40, 12:42] = 255
    Image.fromarray(image).save(tmp_path / "square.png")
    polygon = [12.0, 10.0, 42.0, 10.0, 42.0, 40.0, 12.0, 40.0]
    (tmp_path / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "square.png", "height": 120, "width": 160}],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 2, "iscrowd": 0, "segmentation": [polygon],
                         "area": 900.0, "bbox": [12.0, 10.0, 30.0, 30.0]}],
        "categories": [{"id": 2, "name": "square"}]}))
    co = load_coco_instances(tmp_path / "instances.json", tmp_path)
    clips = ClipDataset(co, frame_num=5, min_sizes=[120], max_size=400, rotation=15.0, seed=0)
    item = clips[0]
    assert item["frames"].shape == (5, 3, 120, 160) and item["ids"].tolist() == [5]
    white = (item["frames"].permute(0, 2, 3, 1).numpy() > 127).all(-1)  # (T, H, W)
    masks = item["masks"][:, 0].numpy()

    def iou(a, b):
        return (a & b).sum() / max((a | b).sum(), 1)

    for t in range(5):
        assert iou(masks[t], white[t]) > 0.9, (t, iou(masks[t], white[t]))
    assert iou(white[0], white[-1]) < 0.7  # the square moved: the clip spans a real rotation


def test_coco_category_map_drops_unmapped_classes():
    target = [{"id": 1, "name": "human"}, {"id": 2, "name": "ball"}]
    co = load_coco_instances(DATA / "coco_mini" / "instances.json", DATA / "coco_mini" / "images",
                             category_map={1: 1, 3: 2}, target_categories=target)
    cats = sorted(i.category_id for insts in co.instances_by_image.values() for i in insts)
    assert cats == [1, 2]  # the elephant (2) is not mapped


def test_coco_missing_image_is_named():
    co = load_coco_instances(DATA / "coco_mini" / "instances_with_binary_mask.json", DATA / "coco_mini" / "images")
    assert co.instances_by_image[374545] == []  # its only annotation is a crowd region
    clips = ClipDataset(co, frame_num=1, min_sizes=[64], max_size=128, is_train=False)
    missing = [i for i, im in enumerate(clips.entries) if im.file_name == "000000374545.jpg"]
    with pytest.raises(DataFormatError, match=r"instances_with_binary_mask\.json: image \d+: .*000000374545\.jpg"):
        clips[missing[0]]


# ------------------------------------------------------------------ loader
def test_sampler_resume_and_ranks():
    full = InfiniteClipSampler(5, seed=3)
    stream = [next(it) for it in [iter(full)] for _ in range(12)]
    assert sorted(i % 5 for i in stream[:5]) == list(range(5)) and stream[5] >= 5
    it = iter(InfiniteClipSampler(5, seed=3, start=7))
    assert [next(it) for _ in range(5)] == stream[7:12]
    r0, r1 = iter(InfiniteClipSampler(5, seed=3, rank=0, world_size=2)), iter(InfiniteClipSampler(5, seed=3, rank=1,
                                                                                                   world_size=2))
    assert [next(r0) for _ in range(3)] == stream[0:6:2] and [next(r1) for _ in range(3)] == stream[1:6:2]
    with pytest.raises(SpvisError):
        InfiniteClipSampler(0)


def test_train_loader_from_registered_config(tmp_path):
    cfg = get_cfg()
    cfg.DATASETS.REGISTER = [{"name": "tiny_user", "json": str(_tiny_video_dataset(tmp_path)),
                              "image_root": str(tmp_path / "imgs")}]
    cfg.DATASETS.TRAIN = ["tiny_user"]
    cfg.INPUT.SAMPLING_FRAME_NUM = 2
    cfg.INPUT.MIN_SIZE_TRAIN = [32]
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SOLVER.CLIPS_PER_DEVICE = 2
    batch = next(iter(build_train_loader(cfg)))
    assert isinstance(batch, list) and len(batch) == 2
    assert all(b["frames"].shape[:2] == (2, 3) and min(b["frames"].shape[2:]) == 32 for b in batch)
    assert collate_clips(batch) == batch


# ------------------------------------------------------------------ RLE parsing (validation of `data check`)
def _reference_runs(counts: bytes) -> list[int]:
    """Straight transcription of the COCO compressed-RLE format, one char at a time."""
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            c = counts[pos] - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        runs.append(value + (runs[-2] if len(runs) > 2 else 0))
    return runs


def test_vectorised_rle_parser_matches_format_and_pycocotools():
    from pycocotools import mask as mask_utils

    from spvis.data.rle_batch import parse_counts_batch, validate_counts
    from spvis.data.segmentation import normalize_segmentation, validate_normalized

    rng = np.random.default_rng(0)
    rles, runs = [], []
    for i in range(200):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        m = rng.random((h, w)) < rng.random()
        if i % 2:
            m = np.zeros((h, w), dtype=bool)
            m[rng.integers(0, h):, rng.integers(0, w):] = True
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rles.append(normalize_segmentation(rle, h, w))
        runs.append(_reference_runs(rle["counts"]))
        assert sum(runs[-1]) == h * w
    parsed = parse_counts_batch([r["counts"] for r in rles])
    assert parsed.totals.tolist() == [sum(r) for r in runs]
    assert parsed.areas.tolist() == [sum(r[1::2]) for r in runs] == mask_utils.area(rles[:100]).tolist() + \
        mask_utils.area(rles[100:]).tolist()
    assert validate_normalized(rles)[1] == [None] * len(rles)
    errors = parse_counts_batch([b"0a\x10", b"0P"]).errors  # 'P' = 32 + 0: continuation bit set on the last char
    assert "invalid character" in errors[0] and "ends in the middle of a run" in errors[1]
    _, errors = validate_counts([mask_utils.encode(np.zeros((10, 10), np.uint8, order="F"))["counts"]], [(10, 11)])
    assert "cover 100 pixels, expected 10x11=110" in errors[0]


def test_mixed_datasets_follow_ratio_and_need_one_category_list(tmp_path):
    from spvis.data.clip_dataset import MixedClipDataset, build_clip_dataset

    first = _tiny_video_dataset(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    second = _tiny_video_dataset(other_dir)
    data = json.loads(second.read_text())
    data["videos"][0]["id"] = 6
    for ann in data["annotations"]:
        ann["video_id"] = 6
    second.write_text(json.dumps(data))
    cfg = get_cfg()
    cfg.DATASETS.REGISTER = [{"name": "mix_a", "json": str(first), "image_root": str(tmp_path / "imgs")},
                             {"name": "mix_b", "json": str(second), "image_root": str(other_dir / "imgs")}]
    cfg.DATASETS.RATIO = [0.0, 1.0]
    cfg.INPUT.MIN_SIZE_TRAIN = [32]
    mixed = build_clip_dataset(cfg, ["mix_a", "mix_b"])
    assert isinstance(mixed, MixedClipDataset) and len(mixed) == 2
    assert {mixed[i]["video_id"] for i in range(6)} == {6}
    data["categories"] = [{"id": 3, "name": "cat"}]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] == 3]
    second.write_text(json.dumps(data))
    with pytest.raises(SpvisError, match="must share one category list"):
        build_clip_dataset(cfg, ["mix_a", "mix_b"])
    cfg.DATASETS.RATIO = [1.0]
    second.write_text(first.read_text())
    with pytest.raises(SpvisError, match="one non-negative weight per training dataset"):
        build_clip_dataset(cfg, ["mix_a", "mix_b"])
