"""Training clips: sampled frames of one video (or one COCO image as a pseudo-video) with per-clip targets.

Item (docs/INTERFACES.md): ``frames`` uint8 (T, 3, H, W); ``masks`` bool (T, N, H, W); ``labels`` int64
(N,) contiguous; ``ids`` int64 (N,) track ids; ``present`` bool (T, N); ``video_id``; ``frame_indices``.
N counts identities visible in at least one frame of the clip after augmentation.
T = INPUT.SAMPLING_FRAME_NUM * INPUT.SAMPLING_NUM_CLIPS (several clips = one consecutive window).

Randomness comes from ``np.random.default_rng([seed, epoch, index])``, so an item depends only on its
index (not on the worker that loads it). Indices past ``len(self)`` wrap around with fresh randomness,
so a sampler may hand out a global sample counter.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from spvis.data.clip_item import pack_clip
from spvis.data.coco import ImageDataset
from spvis.data.frame_check import check_frame_file, frame_file_error
from spvis.data.png_io import open_image
from spvis.data.rle import decode_rle
from spvis.data.sampling import monotonic_angles, select_frames
from spvis.data.transforms import apply_image, apply_masks, rotate, sample_clip_transform
from spvis.data.ytvis import VideoDataset
from spvis.errors import DataFormatError, SpvisError


def read_image(path: Any, *, expect: tuple[int, int] | None = None, source: Any = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an image file; DataFormatError naming the file if missing, unreadable or mis-sized."""
    try:
        with open_image(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except OSError as exc:  # missing, unreadable or outside the pixel budget
        raise frame_file_error(source or path, path, exc) from None
    if expect is not None and arr.shape[:2] != tuple(expect):
        raise DataFormatError(source or path, f"frame {path} is {arr.shape[0]}x{arr.shape[1]}, the json says "
                              f"{expect[0]}x{expect[1]}", field="height/width")
    return arr


def first_bad_frame(paths: Sequence[Path], size: tuple[int, int]) -> tuple[int, str, str] | None:
    """(index, reason naming the file, dataset field) of the first frame file that is missing, broken or not
    ``size`` (height, width), else None."""
    for index, path in enumerate(paths):
        try:
            shape = check_frame_file(path)
        except FileNotFoundError:
            return index, f"frame file not found: {path}", "file_names"
        except OSError as exc:
            return index, f"{path}: {exc}", "file_names"
        if shape != tuple(size):
            return index, f"{path} is {shape[0]}x{shape[1]}, the json says {size[0]}x{size[1]}", "height/width"
    return None


class ClipDataset(torch.utils.data.Dataset):
    """Clips of a ``VideoDataset`` (or pseudo-videos of an ``ImageDataset``) for training or validation."""

    def __init__(self, dataset: VideoDataset | ImageDataset, *, frame_num: int = 1, frame_range: int = 2,
                 num_clips: int = 1, reverse: bool = False, min_sizes: Sequence[int] = (360,),
                 max_size: int = 640, flip: bool = False, crop: bool = False,
                 crop_pre_sizes: Sequence[int] = (400, 500, 600), crop_size: Sequence[int] = (384, 600),
                 rotation: float = 15.0, is_train: bool = True, seed: int = 0):
        self.dataset = dataset
        self.frame_num, self.frame_range, self.num_clips = int(frame_num), int(frame_range), int(num_clips)
        self.reverse, self.flip, self.crop = reverse, flip, crop
        self.min_sizes, self.max_size = list(min_sizes), int(max_size)
        self.crop_pre_sizes, self.crop_size = list(crop_pre_sizes), list(crop_size)
        self.rotation, self.is_train, self.seed, self.epoch = float(rotation), is_train, int(seed), 0
        self.is_image = isinstance(dataset, ImageDataset)
        self.class_names = dataset.class_names
        self.contiguous_to_dataset_id = dataset.contiguous_to_dataset_id
        self.dataset_to_contiguous_id = dataset.dataset_to_contiguous_id
        if self.is_image:
            self.entries = [im for im in dataset.images if not is_train or dataset.instances_by_image[im.id]]
        else:
            self.entries = [v for v in dataset.videos if not is_train or dataset.tracks(v.id)]
        if not self.entries:
            raise SpvisError(f"{dataset.json_path}: no {'images' if self.is_image else 'videos'} with annotations "
                             "to train on")

    def check_frames(self, *, allow_truncated: bool = False) -> list[str]:
        """Check every frame file of the entries from its header and end marker (``spvis.data.frame_check``, nothing
        decoded: 480 frames of a synth set in 0.06-0.12 s, 0.12-0.25 ms a frame), so a missing, empty, cut, zeroed
        or mis-sized frame stops training before its first step, naming the file, instead of killing it at the step
        that samples the frame.

        With ``allow_truncated`` a video ends before its first bad frame and an image (or a video whose first frame
        is bad) is left out; returns one line per entry changed so."""
        notes, kept = [], []
        for entry in self.entries:
            what = f"image {entry.id}" if self.is_image else f"video {entry.id}"
            paths = [self.dataset.image_path(entry)] if self.is_image else \
                [self.dataset.frame_path(entry, t) for t in range(entry.length)]
            bad = first_bad_frame(paths, (entry.height, entry.width))
            if bad is None:
                kept.append(entry)
                continue
            index, reason, field = bad
            if not allow_truncated:
                raise DataFormatError(self.dataset.json_path, f"frame {index}: {reason}; pass --allow-truncated to "
                                      f"train on the frames before it", entry=what, field=field)
            if index == 0:
                notes.append(f"{self.dataset.json_path}: {what} left out: frame 0: {reason}")
                continue
            kept.append(dataclasses.replace(entry, length=index, file_names=list(entry.file_names[:index])))
            notes.append(f"{self.dataset.json_path}: {what} cut to its first {index} frames: frame {index}: {reason}")
        if not kept:
            raise SpvisError(f"{self.dataset.json_path}: no {'images' if self.is_image else 'videos'} left to train "
                             f"on after leaving out those with bad frames")
        self.entries = kept
        return notes

    @classmethod
    def from_config(cls, cfg: Any, dataset: VideoDataset | ImageDataset, *, is_train: bool = True) -> "ClipDataset":
        """Build from the INPUT section of a config."""
        inp = cfg.INPUT
        return cls(dataset, frame_num=inp.SAMPLING_FRAME_NUM, frame_range=inp.SAMPLING_FRAME_RANGE,
                   num_clips=inp.SAMPLING_NUM_CLIPS, reverse=inp.REVERSE_AGU and is_train,
                   min_sizes=inp.MIN_SIZE_TRAIN if is_train else [inp.MIN_SIZE_TEST],
                   max_size=inp.MAX_SIZE_TRAIN if is_train else inp.MAX_SIZE_TEST,
                   flip=inp.RANDOM_FLIP and is_train, crop=inp.CROP.ENABLED and is_train,
                   crop_pre_sizes=inp.CROP.PRE_RESIZE, crop_size=inp.CROP.SIZE,
                   rotation=inp.PSEUDO_VIDEO_ROTATION, is_train=is_train, seed=cfg.SEED)

    @property
    def clip_length(self) -> int:
        return self.frame_num * self.num_clips

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream (call once per epoch when a sampler repeats indices)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if index < 0:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        entry = self.entries[index % len(self.entries)]
        return self._image_clip(entry, rng) if self.is_image else self._video_clip(entry, rng)

    # ------------------------------------------------------------------ videos
    def _video_clip(self, video, rng: np.random.Generator) -> dict:
        T = self.clip_length
        if self.is_train:
            frames_idx = select_frames(rng, video.length, T, self.frame_range,
                                       consecutive=self.num_clips > 1, reverse=self.reverse)
        else:
            frames_idx = [min(t, video.length - 1) for t in range(T)]
        tf = sample_clip_transform(rng if self.is_train else None, video.height, video.width,
                                   min_sizes=self.min_sizes, max_size=self.max_size, flip=self.flip,
                                   crop=self.crop, crop_pre_sizes=self.crop_pre_sizes, crop_size=self.crop_size)
        tracks = [tr for tr in self.dataset.tracks(video.id) if any(tr.segmentations[f] is not None for f in frames_idx)]
        images, masks = [], []
        for f in frames_idx:
            img = read_image(self.dataset.frame_path(video, f), expect=(video.height, video.width),
                             source=f"{self.dataset.json_path}: video {video.id}")
            images.append(apply_image(img, tf))
            m = np.zeros((len(tracks), video.height, video.width), dtype=bool)
            for n, tr in enumerate(tracks):
                rle = tr.segmentations[f]
                if rle is not None:
                    m[n] = decode_rle(rle)
            masks.append(apply_masks(m, tf))
        labels = [self.dataset_to_contiguous_id[tr.category_id] for tr in tracks]
        ids = [tr.id for tr in tracks]
        return pack_clip(images, masks, labels, ids, video.id, list(frames_idx))

    # ------------------------------------------------------------------ COCO pseudo-videos
    def _image_clip(self, image_rec, rng: np.random.Generator) -> dict:
        T = self.clip_length
        img = read_image(self.dataset.image_path(image_rec), expect=(image_rec.height, image_rec.width),
                         source=f"{self.dataset.json_path}: image {image_rec.id}")
        insts = self.dataset.instances_by_image[image_rec.id]
        tf = sample_clip_transform(rng if self.is_train else None, image_rec.height, image_rec.width,
                                   min_sizes=self.min_sizes, max_size=self.max_size, flip=self.flip,
                                   crop=self.crop, crop_pre_sizes=self.crop_pre_sizes, crop_size=self.crop_size)
        base_img = apply_image(img, tf)
        m = np.stack([decode_rle(i.rle) for i in insts]) if insts else np.zeros((0,) + img.shape[:2], dtype=bool)
        base_masks = apply_masks(m, tf)
        if self.is_train and self.rotation > 0:
            angles = monotonic_angles(rng, T, self.rotation)
            center = (float(rng.uniform(0.4, 0.6) * tf.out_w), float(rng.uniform(0.4, 0.6) * tf.out_h))
        else:
            angles, center = [0.0] * T, (tf.out_w / 2, tf.out_h / 2)
        images, masks = [], []
        for a in angles:
            if a == 0.0:
                images.append(base_img)
                masks.append(base_masks)
            else:
                ri, rm = rotate(base_img, base_masks, a, center)
                images.append(ri)
                masks.append(rm)
        labels = [self.dataset_to_contiguous_id[i.category_id] for i in insts]
        ids = [i.id for i in insts]
        return pack_clip(images, masks, labels, ids, image_rec.id, list(range(T)))


def collate_clips(items: list[dict]) -> list[dict]:
    """Batch = the list of clip dicts (clips differ in size and instance count; the model pads)."""
    return list(items)


class MixedClipDataset(torch.utils.data.Dataset):
    """Several clip datasets sharing one category list, drawn with ``DATASETS.RATIO`` weights per index."""

    def __init__(self, parts: list[ClipDataset], ratios: Sequence[float] | None = None, seed: int = 0):
        names = parts[0].class_names
        for p in parts[1:]:
            if p.class_names != names:
                raise SpvisError("training datasets must share one category list (e.g. ytvis_2019_train with "
                                 "coco2ytvis2019_train); got different categories")
        ratios = list(ratios) if ratios else [1.0] * len(parts)
        if len(ratios) != len(parts) or any(r < 0 for r in ratios) or sum(ratios) <= 0:
            raise SpvisError(f"DATASETS.RATIO must give one non-negative weight per training dataset, got {ratios}")
        self.parts, self.seed, self.epoch = parts, int(seed), 0
        self.probs = np.asarray(ratios, dtype=np.float64) / float(sum(ratios))
        self.class_names = names
        self.contiguous_to_dataset_id = parts[0].contiguous_to_dataset_id
        self.dataset_to_contiguous_id = parts[0].dataset_to_contiguous_id
        self.clip_length = parts[0].clip_length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for p in self.parts:
            p.set_epoch(epoch)

    def check_frames(self, *, allow_truncated: bool = False) -> list[str]:
        """``ClipDataset.check_frames`` of every part that reads frame files (a part generated in memory has none)."""
        return [note for p in self.parts if hasattr(p, "check_frames")
                for note in p.check_frames(allow_truncated=allow_truncated)]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 7])
        k = int(rng.choice(len(self.parts), p=self.probs))
        return self.parts[k][int(rng.integers(0, 2 ** 31 - 1))]


def build_clip_dataset(cfg: Any, dataset_name_or_json: str | Sequence[str], image_root: str | None = None,
                       is_train: bool = True) -> ClipDataset | MixedClipDataset:
    """ClipDataset for a dataset name (builtin or from cfg.DATASETS.REGISTER) or json path, from cfg.INPUT.

    A list of names gives a ``MixedClipDataset`` weighted by ``cfg.DATASETS.RATIO``; a training name
    ``synth:<preset>`` gives freshly generated clips (``spvis.data.synth_stream``).
    """
    from spvis.data.catalog import load_dataset, register_from_config, resolve_dataset
    from spvis.data.synth_stream import SynthClipDataset, is_stream_name

    register_from_config(cfg)
    if is_train and is_stream_name(dataset_name_or_json):
        return SynthClipDataset.from_config(cfg, dataset_name_or_json)
    if isinstance(dataset_name_or_json, (list, tuple)):
        if len(dataset_name_or_json) == 0:
            raise SpvisError("no training dataset given (DATASETS.TRAIN is empty)")
        if len(dataset_name_or_json) == 1:
            return build_clip_dataset(cfg, dataset_name_or_json[0], image_root, is_train)
        parts = [build_clip_dataset(cfg, n, None, is_train) for n in dataset_name_or_json]
        return MixedClipDataset(parts, cfg.DATASETS.RATIO, seed=cfg.SEED)
    spec = resolve_dataset(dataset_name_or_json, image_root)
    return ClipDataset.from_config(cfg, load_dataset(spec), is_train=is_train)
