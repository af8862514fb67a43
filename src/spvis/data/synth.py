"""Procedural video instance segmentation benchmark in the YouTube-VIS format (``spvis synth``).

Objects of several categories (shape + colour family, per-instance appearance) move smoothly on a
textured background under a panning camera, change scale and rotate, enter and leave the frame, and
occlude each other by depth order. Planned occlusion events (their number set by ``occlusion``) steer
a larger object in front of another one so that it disappears fully and re-appears afterwards.
``frame_stride`` keeps every K-th frame of the underlying motion (low frame rates). ``identity="hard"``
replaces the scene by look-alike objects whose paths cross, which hide behind moving occluders for 10-40
frames and leave and re-enter the frame (``spvis.data.synth_identity``). Everything is a function of ``seed``
(one random generator per video), so the output is deterministic.

Ground truth: the visible part of each object per frame (compressed RLE, null when not visible),
true mask areas, boxes, ``iscrowd`` 0, plus two per-frame fields per annotation: ``occlusion`` in the OVIS
vocabulary (``no_occlusion | slight_occlusion | severe_occlusion``, null where not visible), so the OVIS
occlusion buckets of ``spvis eval`` apply, and ``visibility`` with the generator's own states
(``no_occlusion | partial_occlusion | full_occlusion | out_of_frame``), which tell hidden from out-of-frame.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from spvis.data.identity_stats import IdentityCounts, TrackBoxes, video_identity_counts
from spvis.data.synth_identity import IdentityPreset
from spvis.data.synth_motion import OCCLUSION_LEVELS
from spvis.data.synth_plan import IDENTITY_LEVELS, parse_frame_size
from spvis.data.synth_render import OCC_OUT, render_video, track_statistics
from spvis.data.synth_shapes import CATEGORY_SPECS, MAX_CATEGORIES
from spvis.errors import SpvisError
from spvis.utils.atomic_io import atomic_write_json

SYNTH_DESCRIPTION = "SPVIS synthetic benchmark"  # info.description of every json `spvis synth` writes


def split_videos(videos: int, valid_fraction: float, valid_name: str) -> list[str]:
    """The split of each video ("train" or ``valid_name``): the last ``valid_fraction`` of them, at least one of each
    split when there are two videos or more and the fraction is not 0; SpvisError outside [0, 1)."""
    if not 0.0 <= valid_fraction < 1.0:
        raise SpvisError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    n_valid = int(round(videos * valid_fraction))
    if valid_fraction > 0 and videos > 1:
        n_valid = min(max(n_valid, 1), videos - 1)
    return ["train"] * (videos - n_valid) + [valid_name] * n_valid


def output_folder(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path; SpvisError when a file of that name is in the way of the dataset folder."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SpvisError(f"{out}: --out must be a folder, but a file of that name exists")
    return out


def generate_synthetic_dataset(out_dir: str | Path, *, videos: int = 40, frames: int = 24,
                               size: int | tuple[int, int] | str = 256, categories: int = 6,
                               max_objects: int = 4, occlusion: str = "medium", frame_stride: int = 1,
                               valid_fraction: float = 0.2, seed: int = 0, jpeg_quality: int = 90,
                               progress: bool = False, identity: str = "normal",
                               identity_preset: IdentityPreset | None = None) -> dict:
    """Write ``out_dir/{train,valid}.json`` + ``out_dir/{train,valid}/JPEGImages/<video>/<frame>.jpg``.

    ``identity="hard"`` builds the identity-hard scenes; ``identity_preset`` (a ``synth_identity.IdentityPreset``)
    changes their knobs, and is recorded in the json's ``info`` when it is not the default.

    Returns a dict with the written paths and statistics (videos, frames, tracks, occlusion counts).
    """
    from PIL import Image

    height, width = parse_frame_size(size)
    if not 1 <= categories <= MAX_CATEGORIES:
        raise SpvisError(f"--categories must be in 1..{MAX_CATEGORIES}, got {categories}")
    if occlusion not in OCCLUSION_LEVELS:
        raise SpvisError(f"--occlusion must be one of {list(OCCLUSION_LEVELS)}, got {occlusion!r}")
    if videos < 1 or frames < 1 or max_objects < 1 or frame_stride < 1:
        raise SpvisError("--videos, --frames, --max-objects and --frame-stride must be at least 1")
    if identity not in IDENTITY_LEVELS:
        raise SpvisError(f"--identity must be one of {list(IDENTITY_LEVELS)}, got {identity!r}")
    if identity_preset is not None and identity != "hard":
        raise SpvisError("an identity preset applies to identity='hard' only")
    if identity == "hard" and max_objects < 3:
        raise SpvisError(f"--identity hard needs --max-objects of at least 3 (two look-alikes and an occluder), "
                         f"got {max_objects}")
    split_of = split_videos(videos, valid_fraction, "valid")
    out = output_folder(out_dir)
    cats = [{"id": i + 1, "name": CATEGORY_SPECS[i].name, "supercategory": "shape"} for i in range(categories)]
    info = {"description": SYNTH_DESCRIPTION, "seed": seed, "occlusion": occlusion,
            "frame_stride": frame_stride, "version": 1}
    if identity != "normal":
        info["identity"] = identity  # absent for normal: its files stay byte-identical to earlier versions
    if identity_preset is not None:
        info["identity_preset"] = asdict(identity_preset)
    data = {s: {"info": dict(info), "videos": [], "annotations": [], "categories": cats} for s in ("train", "valid")}
    identity_counts = IdentityCounts()
    totals = {"full_occlusion_frames": 0, "partial_occlusion_frames": 0, "reappearances": 0, "events": 0}
    start = time.perf_counter()
    ann_id = 1
    iterator = range(videos)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="synth", unit="video")
    for v in iterator:
        rng = np.random.default_rng([seed, v])
        images, tracks, vstats = render_video(rng, frames=frames, height=height, width=width,
                                              categories=categories, max_objects=max_objects,
                                              occlusion=occlusion, frame_stride=frame_stride, identity=identity,
                                              identity_preset=identity_preset)
        identity_counts.add(video_identity_counts(
            [TrackBoxes(tr["category"], tr["bboxes"], [v == OCC_OUT for v in tr["visibility"]]) for tr in tracks],
            height, width))
        split = split_of[v]
        name = f"video_{v + 1:05d}"
        folder = out / split / "JPEGImages" / name
        folder.mkdir(parents=True, exist_ok=True)
        file_names = []
        for f, img in enumerate(images):
            Image.fromarray(img).save(folder / f"{f:05d}.jpg", quality=jpeg_quality)
            file_names.append(f"{name}/{f:05d}.jpg")
        data[split]["videos"].append({"id": v + 1, "name": name, "file_names": file_names, "height": height,
                                      "width": width, "length": frames})
        for tr in tracks:
            data[split]["annotations"].append({
                "id": ann_id, "video_id": v + 1, "category_id": tr["category"] + 1, "iscrowd": 0,
                "height": height, "width": width, "length": 1, "segmentations": tr["segmentations"],
                "areas": [a if s is not None else None for a, s in zip(tr["areas"], tr["segmentations"])],
                "bboxes": tr["bboxes"], "occlusion": tr["occlusion"], "visibility": tr["visibility"]})
            ann_id += 1
        tstats = track_statistics(tracks)
        for key in ("full_occlusion_frames", "partial_occlusion_frames", "reappearances"):
            totals[key] += tstats[key]
        totals["events"] += vstats["events"]
    paths = {}
    for split in ("train", "valid"):
        path = out / f"{split}.json"
        atomic_write_json(path, data[split])
        paths[split] = str(path)
    return {
        "out_dir": str(out), "train_json": paths["train"], "valid_json": paths["valid"],
        "train_image_root": str(out / "train" / "JPEGImages"), "valid_image_root": str(out / "valid" / "JPEGImages"),
        "videos": {s: len(data[s]["videos"]) for s in ("train", "valid")},
        "frames": videos * frames, "tracks": {s: len(data[s]["annotations"]) for s in ("train", "valid")},
        "categories": [c["name"] for c in cats], **totals, "identity": identity_counts.summary(),
        "seconds": round(time.perf_counter() - start, 2),
    }
