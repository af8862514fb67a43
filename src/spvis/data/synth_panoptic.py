"""Procedural video panoptic (VIPSeg layout) and video semantic (VSPW layout) benchmark (``spvis synth --task``).

Each frame is filled by textured *stuff* regions (sky, ground, water, wall) whose boundaries drift and whose
textures slide with time, with the *thing* shapes of ``spvis.data.synth`` (same trajectories, planned full
occlusions and depth order, same renderer) painted on top. A one-pixel ring around the things is left
unlabelled (VOID in VIPSeg, 255 in VSPW), as annotators leave object borders. Everything is a function of
``seed`` (one generator per video).

Categories: things first (ids 0..C-1, the shape categories), then stuff (ids C..C+S-1). VIPSeg ids:
thing = (category + 1) * 1000 + instance (1, 2, ...), stuff = (category + 1) * 1000; each frame's
``segments_info`` lists stuff first, so instance 0 of the STQ numbering is a stuff segment. VSPW mask
value = category + 1. ``write_perfect_vps_submission`` / ``write_perfect_vss_predictions`` turn any ground
truth into a perfect submission (VPQ = 100, mIoU = 100), for self-checks.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spvis.data.png_io import read_label_png, write_id_png, write_label_png
from spvis.data.synth import output_folder, split_videos
from spvis.data.synth_motion import OCCLUSION_LEVELS, make_object, plan_occlusions
from spvis.data.synth_plan import parse_frame_size
from spvis.data.synth_render import layer_objects
from spvis.data.synth_shapes import CATEGORY_SPECS, MAX_CATEGORIES, hsv_to_rgb, make_background
from spvis.errors import SpvisError
from spvis.utils.atomic_io import atomic_write_json, atomic_write_text

VIPSEG_DIR = Path("VIPSeg") / "VIPSeg_720P"
VSPW_DIR = Path("VSPW_480p")
ID_STRIDE = 1000  # segment id = (category + 1) * ID_STRIDE + instance


@dataclass(frozen=True)
class StuffSpec:
    """A stuff class: name, base colour (hue, saturation, value) and the texture it gets."""

    name: str
    hsv: tuple[float, float, float]
    texture: str  # "smooth", "noise", "ripples" or "bricks"


STUFF_SPECS = [
    StuffSpec("sky", (210.0, 0.45, 0.9), "smooth"),
    StuffSpec("ground", (30.0, 0.55, 0.55), "noise"),
    StuffSpec("water", (190.0, 0.7, 0.6), "ripples"),
    StuffSpec("wall", (0.0, 0.1, 0.65), "bricks"),
]
MAX_STUFF = len(STUFF_SPECS)


def _texture(rng: np.random.Generator, spec: StuffSpec, height: int, width: int) -> np.ndarray:
    """float32 (height, width, 3) texture of a stuff class (0-255), the noise of ``make_background`` tinted."""
    noise = make_background(rng, height, width).mean(axis=2) / 128.0  # (H, W) about 1
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if spec.texture == "smooth":
        shade = 0.85 + 0.15 * noise + 0.1 * ys / height
    elif spec.texture == "noise":
        shade = 0.55 + 0.45 * noise
    elif spec.texture == "ripples":
        shade = 0.8 + 0.1 * noise + 0.15 * np.sin(ys * 0.9 + 0.3 * np.sin(xs * 0.05))
    else:  # bricks: mortar lines every 8 rows and staggered every 16 columns
        row = (ys // 8).astype(np.int64)
        mortar = (ys % 8 < 1) | (((xs + 8 * (row % 2)) % 16) < 1)
        shade = np.where(mortar, 0.6, 0.9 + 0.1 * noise)
    h, s, v = spec.hsv
    colour = hsv_to_rgb(h + rng.uniform(-8, 8), s, v)
    return np.clip(colour[None, None, :] * shade[:, :, None], 0, 255).astype(np.float32)


@dataclass
class _StuffLayout:
    """Drifting boundaries of one video: horizon (sky above), shore (water between), wall edge (x < edge)."""

    classes: list[int]  # stuff indices used by this video (into STUFF_SPECS)
    params: np.ndarray  # (3, 4) per boundary: level, amplitude, spatial frequency, phase
    drift: np.ndarray  # (3,) phase change per frame
    slide: np.ndarray  # (S, 2) texture slide per frame (dx, dy) per class

    def labels(self, t: int, height: int, width: int) -> np.ndarray:
        """int64 (H, W) stuff index (into STUFF_SPECS) of every pixel at frame t."""
        xs = np.arange(width, dtype=np.float64)
        ys = np.arange(height, dtype=np.float64)

        def curve(k: int, coord: np.ndarray, span: int) -> np.ndarray:
            level, amp, freq, phase = self.params[k]
            return span * (level + amp * np.sin(2 * np.pi * freq * coord / span + phase + self.drift[k] * t))

        out = np.full((height, width), 1, dtype=np.int64)  # ground
        if 0 in self.classes:
            out[ys[:, None] < curve(0, xs, width)[None, :]] = 0  # sky above the horizon
        if 2 in self.classes:
            horizon = curve(0, xs, width)[None, :] if 0 in self.classes else 0.0
            out[(ys[:, None] >= horizon) & (ys[:, None] < curve(1, xs, width)[None, :])] = 2  # water
        if 3 in self.classes:
            out[xs[None, :] < curve(2, ys, height)[:, None]] = 3  # wall on the left
        return out


def _make_layout(rng: np.random.Generator, stuff: int) -> _StuffLayout:
    classes = [0, 1] + [c for c in range(2, stuff) if rng.random() < 0.75]
    params = np.array([
        [rng.uniform(0.25, 0.4), rng.uniform(0.02, 0.06), rng.uniform(0.5, 2.0), rng.uniform(0, 6.3)],
        [rng.uniform(0.5, 0.65), rng.uniform(0.02, 0.05), rng.uniform(0.5, 2.0), rng.uniform(0, 6.3)],
        [rng.uniform(0.15, 0.3), rng.uniform(0.02, 0.06), rng.uniform(0.5, 1.5), rng.uniform(0, 6.3)],
    ])
    drift = rng.uniform(-0.12, 0.12, size=3)
    slide = rng.uniform(-1.5, 1.5, size=(MAX_STUFF, 2))
    return _StuffLayout(classes, params, drift, slide)


def render_panoptic_video(rng: np.random.Generator, *, frames: int, height: int, width: int, categories: int,
                          stuff: int, max_objects: int, occlusion: str) -> tuple[list[np.ndarray], list[np.ndarray],
                                                                                 dict[int, int]]:
    """One video: images uint8 (H, W, 3), panoptic id maps uint32 (H, W) (0 = VOID) and {id: category}."""
    import cv2

    total = frames
    dense = np.arange(total)
    low = 2 if (max_objects >= 2 and occlusion != "none") else 1
    n_obj = int(rng.integers(low, max_objects + 1))
    cats = rng.integers(0, categories, size=n_obj)
    if occlusion != "none" and n_obj >= 2 and not any(CATEGORY_SPECS[c].inscribed >= 0.7 for c in cats):
        cats[0] = int(rng.integers(0, min(categories, 2)))  # one object able to hide others
    objects = [make_object(rng, dense, category=int(c), height=height, width=width, total=total) for c in cats]
    if not plan_occlusions(rng, objects, dense, occlusion, total, height, width):
        for rank, i in enumerate(rng.permutation(n_obj)):
            objects[int(i)].depth = float(rank)
    front_to_back = sorted(range(n_obj), key=lambda i: objects[i].depth)
    layout = _make_layout(rng, stuff)
    margin = int(np.ceil(2 * np.abs(layout.slide).max() * frames)) + 2
    textures = {c: _texture(rng, STUFF_SPECS[c], height + 2 * margin, width + 2 * margin) for c in layout.classes}
    categories_of = {(categories + c + 1) * ID_STRIDE: categories + c for c in layout.classes}
    ring_kernel = np.ones((3, 3), dtype=np.uint8)
    images, id_maps = [], []
    for f in range(frames):
        labels = layout.labels(f, height, width)  # (H, W) stuff index
        img = np.zeros((height, width, 3), dtype=np.float32)
        for c in layout.classes:
            dx, dy = (margin + layout.slide[c] * f).round().astype(int)
            region = labels == c
            img[region] = textures[c][dy:dy + height, dx:dx + width][region]
        ids = ((categories + labels + 1) * ID_STRIDE).astype(np.uint32)  # (H, W) stuff ids
        parts, covered = layer_objects(objects, front_to_back, f, height, width)
        for i, ((y0, y1, x0, x1), m, colour), visible in reversed(parts):  # paint back to front
            img[y0:y1, x0:x1][m] = colour[m]
            if visible.any():
                sid = (int(objects[i].category) + 1) * ID_STRIDE + i + 1
                ids[visible] = sid
                categories_of[sid] = int(objects[i].category)
        ring = (cv2.dilate(covered.astype(np.uint8), ring_kernel) > 0) & ~covered
        ids[ring] = 0  # unlabelled border around the things
        images.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        id_maps.append(ids)
    return images, id_maps, categories_of


def _segments(ids: np.ndarray, categories_of: dict[int, int], num_things: int) -> list[dict]:
    """``segments_info`` of one id map: stuff first, then things, each by id; area and xywh box."""
    values, counts = np.unique(ids, return_counts=True)
    out = []
    for value, count in sorted(zip(values.tolist(), counts.tolist()),
                               key=lambda vc: (categories_of.get(vc[0], 0) < num_things, vc[0])):
        if value == 0:
            continue
        ys, xs = np.nonzero(ids == value)
        out.append({"id": int(value), "category_id": categories_of[value], "iscrowd": 0, "area": int(count),
                    "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]})
    return out


def panoptic_categories(categories: int, stuff: int) -> list[dict]:
    """Category list of the generated set: shape things first, then stuff."""
    cats = [{"id": i, "name": CATEGORY_SPECS[i].name, "isthing": 1,
             "color": [int(v) for v in hsv_to_rgb(CATEGORY_SPECS[i].hue, 0.8, 0.9)]} for i in range(categories)]
    cats += [{"id": categories + s, "name": STUFF_SPECS[s].name, "isthing": 0,
              "color": [int(v) for v in hsv_to_rgb(*STUFF_SPECS[s].hsv)]} for s in range(stuff)]
    return cats


def generate_panoptic_dataset(out_dir: str | Path, *, task: str = "vps", videos: int = 12, frames: int = 16,
                              size: int | tuple[int, int] | str = "128x160", categories: int = 4, stuff: int = 4,
                              max_objects: int = 4, occlusion: str = "medium", valid_fraction: float = 0.25,
                              seed: int = 0, jpeg_quality: int = 90, progress: bool = False) -> dict:
    """Write the VIPSeg (task vps) or VSPW (task vss) layout under ``out_dir``; returns paths and counts.

    vps: ``out_dir/VIPSeg/VIPSeg_720P/{images,panomasksRGB}/<video>/<frame>`` + ``panoptic_gt_VIPSeg_{train,
    val}.json``; vss: ``out_dir/VSPW_480p/data/<video>/{origin,mask}/<frame>`` + ``{train,val}.txt``. With
    ``out_dir`` as ``$SPVIS_DATASETS`` the builtin names vipseg_train / vspw_val ... resolve to it.
    """
    from PIL import Image

    if task not in ("vps", "vss"):
        raise SpvisError(f"task must be 'vps' or 'vss', got {task!r}")
    height, width = parse_frame_size(size)
    if not 1 <= categories <= MAX_CATEGORIES:
        raise SpvisError(f"--categories must be in 1..{MAX_CATEGORIES}, got {categories}")
    if not 2 <= stuff <= MAX_STUFF:
        raise SpvisError(f"--stuff must be in 2..{MAX_STUFF}, got {stuff}")
    if occlusion not in OCCLUSION_LEVELS:
        raise SpvisError(f"--occlusion must be one of {list(OCCLUSION_LEVELS)}, got {occlusion!r}")
    if videos < 1 or frames < 1 or not 1 <= max_objects < ID_STRIDE:
        raise SpvisError(f"--videos and --frames must be at least 1 and --max-objects in 1..{ID_STRIDE - 1}")
    split_of = split_videos(videos, valid_fraction, "val")
    out = output_folder(out_dir)
    cats = panoptic_categories(categories, stuff)
    root = out / (VIPSEG_DIR if task == "vps" else VSPW_DIR)
    data = {s: {"videos": [], "annotations": [], "categories": cats} for s in ("train", "val")}
    names: dict[str, list[str]] = {"train": [], "val": []}
    segments_total = 0
    start = time.perf_counter()
    iterator = range(videos)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"synth {task}", unit="video")
    for v in iterator:
        rng = np.random.default_rng([seed, v])
        images, id_maps, categories_of = render_panoptic_video(
            rng, frames=frames, height=height, width=width, categories=categories, stuff=stuff,
            max_objects=max_objects, occlusion=occlusion)
        split, name = split_of[v], f"synth_{v + 1:05d}"
        names[split].append(name)
        image_entries, frame_entries = [], []
        for f, (img, ids) in enumerate(zip(images, id_maps)):
            frame = f"{f:08d}"
            if task == "vps":
                (root / "images" / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / "images" / name / f"{frame}.jpg", quality=jpeg_quality)
                write_id_png(root / "panomasksRGB" / name / f"{frame}.png", ids)
                segments = _segments(ids, categories_of, categories)
                segments_total += len(segments)
                image_entries.append({"id": frame, "file_name": f"{frame}.jpg", "height": height, "width": width})
                frame_entries.append({"image_id": frame, "file_name": f"{frame}.png", "segments_info": segments})
            else:
                (root / "data" / name / "origin").mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / "data" / name / "origin" / f"{frame}.jpg", quality=jpeg_quality)
                # VSPW value = category + 1 = id // ID_STRIDE; 255 (void) where the id map is VOID
                mask = np.where(ids > 0, ids // ID_STRIDE, 255).astype(np.uint8)  # (H, W)
                write_label_png(root / "data" / name / "mask" / f"{frame}.png", mask)
        if task == "vps":
            data[split]["videos"].append({"video_id": name, "images": image_entries})
            data[split]["annotations"].append({"video_id": name, "annotations": frame_entries})
    written = {}
    if task == "vps":
        for split in ("train", "val"):
            path = root / f"panoptic_gt_VIPSeg_{split}.json"
            atomic_write_json(path, data[split])
            written[split] = str(path)
    else:
        for split in ("train", "val"):
            path = root / f"{split}.txt"
            atomic_write_text(path, "".join(f"{n}\n" for n in names[split]))
            written[split] = str(path)
        names_table = {"others": 0, **{c["name"]: c["id"] + 1 for c in cats}}
        atomic_write_json(root / "label_num_dic_final.json", names_table)
    return {"task": task, "root": str(root), "splits": written,
            "videos": {s: len(names[s]) for s in ("train", "val")}, "frames": videos * frames,
            "segments": segments_total, "things": [c["name"] for c in cats if c["isthing"]],
            "stuff": [c["name"] for c in cats if not c["isthing"]], "seconds": round(time.perf_counter() - start, 2)}


def write_perfect_vps_submission(gt_json: str | Path, mask_root: str | Path | None, out_dir: str | Path) -> Path:
    """Copy a VIPSeg ground truth into the submission layout (``pred.json`` + ``pan_pred/``): VPQ = 100."""
    from spvis.data.vipseg import load_vipseg

    gt = load_vipseg(gt_json, mask_root=mask_root)
    out = Path(out_dir)
    annotations = []
    for video in gt.videos:
        frames = []
        for frame in video.frames:
            target = out / "pan_pred" / video.video_id / f"{frame.name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(gt.mask_path(frame), target)
            frames.append({"image_id": frame.name, "file_name": f"{frame.name}.png",
                           "segments_info": [{"id": s.id, "category_id": s.category_id,
                                              "isthing": int(gt.category(s.category_id).isthing)}
                                             for s in frame.segments]})
        annotations.append({"video_id": video.video_id, "annotations": frames})
    atomic_write_json(out / "pred.json", {"annotations": annotations})
    return out


def write_perfect_vss_predictions(root: str | Path, split: str, out_dir: str | Path) -> Path:
    """Write ``out_dir/<video>/<frame>.png`` = GT value - 1 (others / void -> 0): mIoU = 100, VC = GT's."""
    from spvis.data.vspw import VOID, load_vspw, to_train_ids

    ds = load_vspw(root, split)
    out = Path(out_dir)
    for video in ds.videos:
        for frame in video.frames:
            pred = to_train_ids(read_label_png(ds.mask_path(frame)))
            pred[pred == VOID] = 0
            write_label_png(out / video.name / f"{frame.name}.png", pred)
    return out


def describe(info: dict) -> str:
    """Two lines for the CLI: what was written where."""
    return (f"wrote {info['videos']['train']} train + {info['videos']['val']} val videos ({info['frames']} frames) "
            f"in the {'VIPSeg' if info['task'] == 'vps' else 'VSPW'} layout to {info['root']} in "
            f"{info['seconds']:.1f} s\n  things: {', '.join(info['things'])}\n  stuff: {', '.join(info['stuff'])}\n"
            + "".join(f"  {s}: {p}\n" for s, p in info["splits"].items()))
