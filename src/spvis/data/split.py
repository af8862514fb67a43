"""Carve a local validation split out of an annotated train json (``spvis data split``).

The official valid/test ground truth is hidden, so users evaluate on videos held out of train. Whole
videos move (never frames of one video); the entries are copied unchanged, so the output keeps the input's
segmentation format. Deterministic per seed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from spvis.data.ytvis import load_video_dataset
from spvis.errors import DataFormatError, SpvisError
from spvis.utils.atomic_io import atomic_write_json


def split_video_json(json_path: str | Path, out_dir: str | Path, *, val_fraction: float, seed: int = 0,
                     image_root: str | Path | None = None) -> dict:
    """Write ``out_dir/train.json`` and ``out_dir/valid.json`` (both with ground truth); returns counts and paths.

    When ``image_root`` exists, ``out_dir/{train,valid}/JPEGImages`` are symlinks to it, so the default
    image root of each new json (the ``spvis synth`` layout) finds the frames.
    """
    path = Path(json_path)
    if not 0.0 < val_fraction < 1.0:
        raise SpvisError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    ds = load_video_dataset(path)  # full validation before anything is written
    if not ds.has_annotations:
        raise DataFormatError(path, "has no annotations: a validation split needs ground truth", field="annotations")
    if len(ds.videos) < 2:
        raise DataFormatError(path, f"has {len(ds.videos)} video(s); a split needs at least 2", field="videos")
    with open(path, "r", encoding="utf-8") as handle:
        raw = json.load(handle)
    n_val = min(max(int(round(val_fraction * len(ds.videos))), 1), len(ds.videos) - 1)
    order = np.random.default_rng(seed).permutation(len(ds.videos))
    val_ids = {ds.videos[int(i)].id for i in order[:n_val]}
    common = {k: v for k, v in raw.items() if k not in ("videos", "annotations")}
    info = dict(common.get("info") or {})
    info.update({"split_of": str(path), "split_seed": seed, "split_val_fraction": val_fraction})
    out = Path(out_dir)
    result = {"out_dir": str(out)}
    for split, keep in (("train", lambda vid: vid not in val_ids), ("valid", lambda vid: vid in val_ids)):
        data = dict(common, info=info,
                    videos=[v for v in raw["videos"] if keep(v["id"])],
                    annotations=[a for a in raw["annotations"] if keep(a["video_id"])])
        target = out / f"{split}.json"
        atomic_write_json(target, data)
        result[split] = {"json": str(target), "videos": len(data["videos"]), "tracks": len(data["annotations"])}
        if image_root is not None and Path(image_root).is_dir():
            link = out / split / "JPEGImages"
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            if not link.exists():
                os.symlink(Path(image_root).resolve(), link, target_is_directory=True)
    return result
