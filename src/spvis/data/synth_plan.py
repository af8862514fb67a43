"""Planning one synthetic video: its objects and their paths, depth order, background and camera (no pixels).

``plan_video`` draws everything random about a video from its generator: the scene (normal: random categories
and looks with planned occlusions; identity-hard: ``spvis.data.synth_identity``), the background and the
camera. Frames are painted from the plan on demand (``spvis.data.synth_render``), so the stream dataset and the
file writer (``spvis.data.synth``) paint the same video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spvis.data.synth_identity import HARD, IdentityPreset, hard_identity_scene
from spvis.data.synth_motion import SceneObject, camera_path, make_object, plan_occlusions
from spvis.data.synth_shapes import CATEGORY_SPECS, make_background
from spvis.errors import SpvisError

IDENTITY_LEVELS = ("normal", "hard")  # hard: look-alike objects that cross, hide long and re-enter (synth_identity)


def parse_frame_size(size: int | tuple[int, int] | list[int] | str) -> tuple[int, int]:
    """(height, width) of a frame size given as N, (H, W) or "HxW"; SpvisError below 32x32 or when unreadable."""
    if isinstance(size, str):
        parts = size.lower().split("x")
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise SpvisError(f"--size must look like HxW (e.g. 256x256), got {size!r}") from None
        size = vals[0] if len(vals) == 1 else tuple(vals)
    if isinstance(size, int):
        size = (size, size)
    h, w = int(size[0]), int(size[1])
    if h < 32 or w < 32:
        raise SpvisError(f"synthetic frame size must be at least 32x32, got {h}x{w}")
    return h, w


def _normal_scene(rng: np.random.Generator, dense: np.ndarray, *, height: int, width: int, categories: int,
                  max_objects: int, occlusion: str) -> tuple[list[SceneObject], list[tuple[int, int, int, int]]]:
    """Objects of ``--identity normal`` (random categories and looks, planned occlusions) with their depths set."""
    total = len(dense)
    low = 2 if (max_objects >= 2 and occlusion != "none") else 1
    if occlusion == "heavy":
        low = min(3, max_objects)  # more pairs so several events fit without overlapping
    n_obj = int(rng.integers(low, max_objects + 1))
    cats = rng.integers(0, categories, size=n_obj)
    if occlusion != "none" and n_obj >= 2 and not any(CATEGORY_SPECS[c].inscribed >= 0.7 for c in cats):
        cats[0] = int(rng.integers(0, min(categories, 2)))  # at least one object able to hide others
    if occlusion == "heavy" and n_obj >= 3 and sum(CATEGORY_SPECS[c].inscribed >= 0.7 for c in cats) < 2:
        cats[1] = int(rng.integers(0, min(categories, 2)))  # two occluders: events can overlap in time
    objects = [make_object(rng, dense, category=int(c), height=height, width=width, total=total) for c in cats]
    events = plan_occlusions(rng, objects, dense, occlusion, total, height, width)
    if not events:
        for rank, i in enumerate(rng.permutation(n_obj)):
            objects[int(i)].depth = float(rank)
    return objects, events


@dataclass
class SceneVideo:
    """A planned video: objects with their paths at the kept frames, paint order, background and camera."""

    objects: list[SceneObject]
    front_to_back: list[int]
    background: np.ndarray  # float32 (H + 2 pan, W + 2 pan, 3)
    camera: np.ndarray  # int64 (frames, 2) x, y offsets into the background
    height: int
    width: int
    frames: int
    events: int


def plan_video(rng: np.random.Generator, *, frames: int, height: int, width: int, categories: int,
               max_objects: int, occlusion: str, frame_stride: int, identity: str = "normal",
               identity_preset: IdentityPreset | None = None) -> SceneVideo:
    """Everything random about one video (no pixels yet): frames are painted on demand by
    ``spvis.data.synth_render.paint_frame``."""
    total = (frames - 1) * frame_stride + 1  # motion-time length
    times = np.arange(frames) * frame_stride  # motion times of the kept frames
    # motion is simulated at every motion time, then sampled at the kept frames: a strided video shows exactly
    # every K-th frame of the unstrided one (same seed, same total length)
    dense = np.arange(total)
    if identity == "hard":
        objects, events = hard_identity_scene(rng, dense, frame_stride=frame_stride, height=height, width=width,
                                              categories=categories, max_objects=max_objects, occlusion=occlusion,
                                              preset=identity_preset or HARD)
    else:
        objects, events = _normal_scene(rng, dense, height=height, width=width, categories=categories,
                                        max_objects=max_objects, occlusion=occlusion)
    for o in objects:
        o.pos, o.radius, o.angle = o.pos[times], o.radius[times], o.angle[times]
    pan = max(8, int(0.12 * min(height, width)))
    background = make_background(rng, height + 2 * pan, width + 2 * pan)
    camera = camera_path(rng, times, pan)
    front_to_back = sorted(range(len(objects)), key=lambda i: objects[i].depth)
    return SceneVideo(objects, front_to_back, background, camera, height, width, frames, len(events))
