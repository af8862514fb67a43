"""Fresh procedural training clips, generated on the fly: ``DATASETS.TRAIN: [synth:<preset>]``.

A fixed on-disk set repeats its images after a few thousand samples, and a model trained on it starts to fit
those videos; the generator of ``spvis synth`` makes a new video for every sample instead, at about a
millisecond per painted frame. Sample ``i`` plans video ``[seed, SALT, i]`` with the preset's spec (the same
code path as ``spvis synth``, so the pixels follow the benchmark's distribution), picks the clip's frames as
``ClipDataset`` does from a video file, paints only those frames, and applies the same clip transform. The
item is a pure function of (seed, index): a run and its resume, and any number of loader workers, see the same
stream. Validation and reports stay on fixed on-disk sets (``spvis synth`` / ``scripts/make_synth_data.sh``).

Presets are the benchmark axes (``PRESETS``); ``synth:<preset>,key=value,...`` overrides a field, e.g.
``synth:target,frame_stride=3``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Sequence

import numpy as np
import torch

from spvis.data.clip_item import pack_clip
from spvis.data.sampling import select_frames
from spvis.data.synth_motion import OCCLUSION_LEVELS
from spvis.data.synth_plan import IDENTITY_LEVELS, plan_video
from spvis.data.synth_render import paint_frame
from spvis.data.synth_shapes import CATEGORY_SPECS, MAX_CATEGORIES
from spvis.data.transforms import apply_image, apply_masks, sample_clip_transform
from spvis.errors import ConfigError

PREFIX = "synth:"
SALT = 918273  # second word of every video seed: streamed videos never coincide with `spvis synth --seed` videos
STREAM_LENGTH = 1 << 20  # nominal size: the sampler's counter maps onto 2**20 distinct videos per pass


@dataclass(frozen=True)
class StreamSpec:
    """The ``spvis synth`` arguments of one streamed video (``frames`` output frames at ``frame_stride``)."""

    frames: int = 60
    height: int = 192
    width: int = 256
    categories: int = 6
    max_objects: int = 4
    occlusion: str = "heavy"
    frame_stride: int = 2
    identity: str = "normal"


# The benchmark axes: the target spec, its identity-hard variant, and the low-frame-rate long-video axis.
PRESETS: dict[str, StreamSpec] = {
    "target": StreamSpec(),
    "idhard": StreamSpec(identity="hard"),
    "long": StreamSpec(frames=300, frame_stride=3),
}


def is_stream_name(name: Any) -> bool:
    """True for a ``synth:<preset>[,key=value...]`` training dataset name."""
    return isinstance(name, str) and name.startswith(PREFIX)


def parse_stream_name(name: str) -> StreamSpec:
    """``synth:<preset>[,key=value,...]`` -> StreamSpec; a ConfigError naming the bad part otherwise."""
    preset, *overrides = name[len(PREFIX):].split(",")
    if preset not in PRESETS:
        raise ConfigError(f"DATASETS.TRAIN: unknown synthetic stream {name!r}; presets: "
                          f"{', '.join(PREFIX + p for p in PRESETS)}")
    spec = PRESETS[preset]
    types = {f.name: f.type for f in fields(StreamSpec)}
    for item in overrides:
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in types or not value:
            raise ConfigError(f"DATASETS.TRAIN: {name!r}: expected key=value with key one of {', '.join(types)}, "
                              f"got {item!r}")
        try:
            spec = replace(spec, **{key: value if types[key] == "str" else int(value)})
        except ValueError:
            raise ConfigError(f"DATASETS.TRAIN: {name!r}: {key} must be an integer, got {value!r}") from None
    if spec.occlusion not in OCCLUSION_LEVELS or spec.identity not in IDENTITY_LEVELS:
        raise ConfigError(f"DATASETS.TRAIN: {name!r}: occlusion must be one of {list(OCCLUSION_LEVELS)} and "
                          f"identity one of {list(IDENTITY_LEVELS)}")
    if not 1 <= spec.categories <= MAX_CATEGORIES or min(spec.frames, spec.frame_stride, spec.max_objects) < 1 \
            or min(spec.height, spec.width) < 32:
        raise ConfigError(f"DATASETS.TRAIN: {name!r}: categories must be in 1..{MAX_CATEGORIES}, frames, frame_stride "
                          "and max_objects >= 1, height and width >= 32")
    if spec.identity == "hard" and spec.max_objects < 3:
        raise ConfigError(f"DATASETS.TRAIN: {name!r}: identity=hard needs max_objects >= 3")
    return spec


class SynthClipDataset(torch.utils.data.Dataset):
    """Training clips of freshly generated videos; items as ``ClipDataset`` (docs/INTERFACES.md)."""

    def __init__(self, spec: StreamSpec, *, name: str = "synth:target", frame_num: int = 1, frame_range: int = 2,
                 num_clips: int = 1, reverse: bool = False, min_sizes: Sequence[int] = (192,), max_size: int = 256,
                 flip: bool = False, seed: int = 0):
        self.spec, self.name = spec, name
        self.frame_num, self.frame_range, self.num_clips = int(frame_num), int(frame_range), int(num_clips)
        self.reverse, self.flip = bool(reverse), bool(flip)
        self.min_sizes, self.max_size = [int(s) for s in min_sizes], int(max_size)
        self.seed, self.epoch = int(seed), 0
        self.class_names = [CATEGORY_SPECS[c].name for c in range(spec.categories)]
        self.contiguous_to_dataset_id = list(range(1, spec.categories + 1))  # the ids `spvis synth` writes
        self.dataset_to_contiguous_id = {d: i for i, d in enumerate(self.contiguous_to_dataset_id)}

    @classmethod
    def from_config(cls, cfg: Any, name: str) -> "SynthClipDataset":
        """Build from a stream name and the INPUT section of a (training) config."""
        inp = cfg.INPUT
        if inp.CROP.ENABLED:
            raise ConfigError(f"DATASETS.TRAIN: {name!r}: INPUT.CROP is not supported for synthetic streams "
                              "(the generator already varies position and scale)")
        return cls(parse_stream_name(name), name=name, frame_num=inp.SAMPLING_FRAME_NUM,
                   frame_range=inp.SAMPLING_FRAME_RANGE, num_clips=inp.SAMPLING_NUM_CLIPS, reverse=inp.REVERSE_AGU,
                   min_sizes=inp.MIN_SIZE_TRAIN, max_size=inp.MAX_SIZE_TRAIN, flip=inp.RANDOM_FLIP, seed=cfg.SEED)

    @property
    def clip_length(self) -> int:
        return self.frame_num * self.num_clips

    def set_epoch(self, epoch: int) -> None:
        """Part of the dataset protocol; the stream is indexed by the global counter, so epochs change nothing."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return STREAM_LENGTH

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if index < 0:
            raise IndexError(index)
        spec = self.spec
        rng = np.random.default_rng([self.seed, SALT, index])
        scene = plan_video(rng, frames=spec.frames, height=spec.height, width=spec.width,
                           categories=spec.categories, max_objects=spec.max_objects, occlusion=spec.occlusion,
                           frame_stride=spec.frame_stride, identity=spec.identity)
        frames_idx = select_frames(rng, spec.frames, self.clip_length, self.frame_range,
                                   consecutive=self.num_clips > 1, reverse=self.reverse)
        tf = sample_clip_transform(rng, spec.height, spec.width, min_sizes=self.min_sizes, max_size=self.max_size,
                                   flip=self.flip)
        painted = [paint_frame(scene, f) for f in frames_idx]
        visible_in_clip = sorted({i for _img, layers in painted for i, _out, vis in layers if vis.any()})
        slot = {obj: n for n, obj in enumerate(visible_in_clip)}
        images, masks = [], []
        for image, layers in painted:
            m = np.zeros((len(visible_in_clip), spec.height, spec.width), dtype=bool)
            for i, _out, visible in layers:
                if i in slot:
                    m[slot[i]] = visible
            images.append(apply_image(image, tf))
            masks.append(apply_masks(m, tf))
        labels = [scene.objects[i].category for i in visible_in_clip]
        return pack_clip(images, masks, labels, [i + 1 for i in visible_in_clip], index, list(frames_idx))
