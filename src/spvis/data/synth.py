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

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spvis.data.identity_stats import IdentityCounts, TrackBoxes, video_identity_counts
from spvis.data.rle import encode_mask
from spvis.data.synth_shapes import (
    CATEGORY_SPECS,
    MAX_CATEGORIES,
    Appearance,
    make_background,
    render_object,
    sample_appearance,
)
from spvis.errors import SpvisError
from spvis.utils.atomic_io import atomic_write_json

if TYPE_CHECKING:
    from spvis.data.synth_identity import IdentityPreset

SYNTH_DESCRIPTION = "SPVIS synthetic benchmark"  # info.description of every json `spvis synth` writes
OCCLUSION_LEVELS = {"none": 0.0, "light": 0.5, "medium": 1.0, "heavy": 2.5}  # planned events per 30 frames
# (ramp in/out, dwell fully hidden) ranges in motion frames: heavier levels pack shorter, denser events
EVENT_TIMING = {"none": ((5, 10), (4, 12)), "light": ((5, 10), (4, 12)), "medium": ((4, 8), (4, 10)),
                "heavy": ((2.5, 5), (2, 6))}
IDENTITY_LEVELS = ("normal", "hard")  # hard: look-alike objects that cross, hide long and re-enter (synth_identity)
OCC_NONE, OCC_PARTIAL, OCC_FULL, OCC_OUT = "no_occlusion", "partial_occlusion", "full_occlusion", "out_of_frame"
PARTIAL_THRESHOLD = 0.9  # visible / in-frame area below this counts as partially occluded
SEVERE_THRESHOLD = 0.5  # visible / in-frame area below this is OVIS "severe_occlusion" (above: "slight")


@dataclass
class _Object:
    category: int
    app: Appearance
    pos: np.ndarray  # (T, 2) x, y in screen pixels
    radius: np.ndarray  # (T,)
    angle: np.ndarray  # (T,)
    depth: float = 0.0
    busy: list[tuple[int, int]] = field(default_factory=list)


def _fold(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect a coordinate path into [lo, hi] (a bounce off the walls)."""
    span = max(hi - lo, 1e-3)
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def _smooth_step(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _make_object(rng: np.random.Generator, times: np.ndarray, *, category: int, height: int, width: int,
                 total: int) -> _Object:
    """Smooth trajectory with scale change and rotation; some objects enter or leave the frame."""
    short = min(height, width)
    spec = CATEGORY_SPECS[category]
    r0 = rng.uniform(0.06, 0.13) * short
    t = times.astype(np.float64)
    scale = np.exp(rng.uniform(0.1, 0.35) * np.sin(2 * np.pi * t / rng.uniform(25, 70) + rng.uniform(0, 6.3))
                   + rng.uniform(-0.4, 0.4) * t / max(total, 1))
    radius = r0 * scale
    speed = rng.uniform(0.6, 2.4) * short / 256.0
    heading = rng.uniform(0, 2 * np.pi)
    wobble = rng.uniform(0, 0.4, size=2) * short / 256.0 * 10
    period = rng.uniform(20, 60)
    margin = r0
    p0 = np.array([rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)])
    raw = p0[None, :] + speed * t[:, None] * np.array([np.cos(heading), np.sin(heading)])[None, :]
    raw = raw + wobble[None, :] * np.sin(2 * np.pi * t[:, None] / period + rng.uniform(0, 6.3, size=2))
    pos = np.stack([_fold(raw[:, 0], margin, width - margin), _fold(raw[:, 1], margin, height - margin)], 1)
    mode = rng.choice(["stay", "enter", "leave"], p=[0.5, 0.25, 0.25])
    exit_speed = max(speed * 2.0, 1.5 * short / 256.0)
    if mode != "stay" and total > 6:
        pivot = rng.uniform(0.2, 0.8) * total
        direction = rng.uniform(0, 2 * np.pi)
        unit = np.array([np.cos(direction), np.sin(direction)])
        k = int(np.searchsorted(t, pivot))
        k = min(max(k, 0), len(t) - 1)
        anchor = pos[k].copy()
        if mode == "enter":
            before = t < t[k]
            pos[before] = anchor[None, :] + (t[k] - t[before])[:, None] * exit_speed * unit[None, :]
        else:
            after = t > t[k]
            pos[after] = anchor[None, :] + (t[after] - t[k])[:, None] * exit_speed * unit[None, :]
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.04, 0.04) * t
    return _Object(category, sample_appearance(rng, spec), pos, radius, angle)


def _inside(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bool (N,): (x, y) points inside the frame."""
    return (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)


def _steer_over(target: _Object, occluder: _Object, t: np.ndarray, start: float, ramp: float, end: float) -> None:
    """Blend the occluder onto the target's path and grow it to cover the target between the ramps."""
    w = _smooth_step((t - start) / ramp) * _smooth_step((end - t) / ramp)  # (T,) 0 -> 1 -> 0
    # the occluder glides over the target, grows to cover it, then moves back onto its own path
    occluder.pos = occluder.pos * (1 - w[:, None]) + target.pos * w[:, None]
    cover = 1.2 * target.radius * max(target.app.aspect, 1 / target.app.aspect) / (
        CATEGORY_SPECS[occluder.category].inscribed * min(occluder.app.aspect, 1 / occluder.app.aspect))
    occluder.radius = np.maximum(occluder.radius, w * cover + (1 - w) * occluder.radius)


def _windows_overlap(window: tuple[int, int], objects: list[_Object], members: tuple[int, ...]) -> bool:
    """True when ``window`` (first, last motion time) meets a busy window of one of ``members``."""
    return any(not (window[1] < s or window[0] > e) for o in members for s, e in objects[o].busy)


def _level_events(rng: np.random.Generator, objects: list[_Object], times: np.ndarray, level: str,
                  total: int, height: int, width: int) -> list[tuple[int, int, int, int]] | None:
    """Steer occluders over targets at the ``--occlusion`` level's rate: events (occluder, target, start, end) in
    motion-time units, or None when the level plans nothing (no rate, one object, no object able to occlude)."""
    rate = OCCLUSION_LEVELS[level]
    if rate == 0 or len(objects) < 2:
        return None
    expected = rate * total / 30.0
    count = int(math.floor(expected + rng.random()))
    if level == "heavy":
        count = max(count, 1)
    occluders = [i for i, o in enumerate(objects) if CATEGORY_SPECS[o.category].inscribed >= 0.7]
    if not occluders:
        return None
    events = []
    t = times.astype(np.float64)
    ramp_range, dwell_range = EVENT_TIMING[level]
    for _ in range(count * 6):  # several attempts per wanted event (busy objects, targets out of frame)
        if len(events) >= count:
            break
        ramp, dwell = rng.uniform(*ramp_range), rng.uniform(*dwell_range)
        if total < 2 * ramp + dwell + 4:
            break
        start = rng.uniform(1, total - 2 * ramp - dwell - 2)
        end = start + 2 * ramp + dwell
        b = int(rng.choice(occluders))
        a = int(rng.choice([i for i in range(len(objects)) if i != b]))
        window = (int(start), int(math.ceil(end)))
        if _windows_overlap(window, objects, (a, b)):
            continue
        A, B = objects[a], objects[b]
        hidden = (t >= start + ramp) & (t <= end - ramp)  # frames where the target should be fully covered
        if hidden.any() and not _inside(A.pos[hidden], height, width).all():
            continue  # a target leaving the frame would not re-appear from behind the occluder
        A.busy.append(window)
        B.busy.append(window)
        _steer_over(A, B, t, start, ramp, end)
        events.append((b, a, window[0], window[1]))
    return events


def _assign_depth(rng: np.random.Generator, objects: list[_Object], events: list[tuple[int, int, int, int]]) -> None:
    """Depth of every object: each occluder in front of its targets (a topological order; ties at random)."""
    order = _depth_order(rng, len(objects), [(b, a) for b, a, _, _ in events])
    for rank, i in enumerate(order):
        objects[i].depth = float(rank)


def _plan_occlusions(rng: np.random.Generator, objects: list[_Object], times: np.ndarray, level: str,
                     total: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Steer occluders over targets and order depths: returns events (occluder, target, start, end) in motion time."""
    events = _level_events(rng, objects, times, level, total, height, width)
    if events is None:
        return []
    _assign_depth(rng, objects, events)
    return events


def _depth_order(rng: np.random.Generator, n: int, front_of: list[tuple[int, int]]) -> list[int]:
    """Front-to-back order satisfying (front, back) pairs; pairs that would close a cycle are ignored."""
    keep: list[tuple[int, int]] = []
    for pair in front_of:
        trial = keep + [pair]
        if _topo(n, trial, rng) is not None:
            keep = trial
    order = _topo(n, keep, rng)
    return order if order is not None else list(range(n))


def _topo(n: int, edges: list[tuple[int, int]], rng: np.random.Generator) -> list[int] | None:
    indeg = [0] * n
    for _, b in edges:
        indeg[b] += 1
    ready = [i for i in range(n) if indeg[i] == 0]
    out: list[int] = []
    while ready:
        i = ready.pop(int(rng.integers(len(ready))))
        out.append(i)
        for f, b in edges:
            if f == i:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return out if len(out) == n else None


def _camera_path(rng: np.random.Generator, times: np.ndarray, pan: int) -> np.ndarray:
    """(T, 2) integer camera offsets inside [0, 2*pan]: a slow drift plus a gentle sway."""
    t = times.astype(np.float64)
    drift = rng.uniform(-1, 1, size=2) * pan / max(t[-1], 1.0)
    sway = rng.uniform(0, 0.3, size=2) * pan
    path = pan + drift[None, :] * (t[:, None] - t[-1] / 2) + sway[None, :] * np.sin(
        2 * np.pi * t[:, None] / rng.uniform(30, 90) + rng.uniform(0, 6.3, size=2))
    return np.clip(np.round(path), 0, 2 * pan).astype(np.int64)


def layer_objects(objects: list, front_to_back: list[int], f: int, height: int,
                  width: int) -> tuple[list[tuple[int, tuple, np.ndarray]], np.ndarray]:
    """Frame ``f``'s objects rendered front to back: ([(index, render_object output, visible (H, W) bool)],
    union of all their masks). ``visible`` is the part of an object that no nearer object covers."""
    covered = np.zeros((height, width), dtype=bool)
    layers = []
    for i in front_to_back:
        o = objects[i]
        out = render_object(CATEGORY_SPECS[o.category], o.app, cx=float(o.pos[f, 0]), cy=float(o.pos[f, 1]),
                            radius=float(o.radius[f]), angle=float(o.angle[f]), height=height, width=width)
        if out is None:
            continue
        (y0, y1, x0, x1), m, _ = out
        full = np.zeros((height, width), dtype=bool)
        full[y0:y1, x0:x1] = m
        layers.append((i, out, full & ~covered))
        covered |= full
    return layers, covered


def _normal_scene(rng: np.random.Generator, dense: np.ndarray, *, height: int, width: int, categories: int,
                  max_objects: int, occlusion: str) -> tuple[list[_Object], list[tuple[int, int, int, int]]]:
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
    objects = [_make_object(rng, dense, category=int(c), height=height, width=width, total=total) for c in cats]
    events = _plan_occlusions(rng, objects, dense, occlusion, total, height, width)
    if not events:
        for rank, i in enumerate(rng.permutation(n_obj)):
            objects[int(i)].depth = float(rank)
    return objects, events


@dataclass
class SceneVideo:
    """A planned video: objects with their paths at the kept frames, paint order, background and camera."""

    objects: list[_Object]
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
    """Everything random about one video (no pixels yet): frames are painted on demand by ``paint_frame``."""
    total = (frames - 1) * frame_stride + 1  # motion-time length
    times = np.arange(frames) * frame_stride  # motion times of the kept frames
    # motion is simulated at every motion time, then sampled at the kept frames: a strided video shows exactly
    # every K-th frame of the unstrided one (same seed, same total length)
    dense = np.arange(total)
    if identity == "hard":
        from spvis.data.synth_identity import HARD, hard_identity_scene  # imports this module's primitives

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
    camera = _camera_path(rng, times, pan)
    front_to_back = sorted(range(len(objects)), key=lambda i: objects[i].depth)
    return SceneVideo(objects, front_to_back, background, camera, height, width, frames, len(events))


def paint_frame(scene: SceneVideo, f: int) -> tuple[np.ndarray, list[tuple[int, tuple, np.ndarray]]]:
    """Frame ``f`` of a planned video: (uint8 (H, W, 3) image, layers front to back as ``layer_objects``)."""
    height, width = scene.height, scene.width
    oy, ox = scene.camera[f, 1], scene.camera[f, 0]
    img = scene.background[oy:oy + height, ox:ox + width].copy()  # (H, W, 3) float32
    layers, _ = layer_objects(scene.objects, scene.front_to_back, f, height, width)
    for _i, ((y0, y1, x0, x1), m, colour), _visible in reversed(layers):  # paint back to front
        region = img[y0:y1, x0:x1]
        region[m] = colour[m]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), layers


def render_video(rng: np.random.Generator, *, frames: int, height: int, width: int, categories: int,
                 max_objects: int, occlusion: str, frame_stride: int, identity: str = "normal",
                 identity_preset: IdentityPreset | None = None) -> tuple[list[np.ndarray], list[dict], dict]:
    """Render one video: returns frames (uint8 (H, W, 3)), tracks and per-video statistics."""
    scene = plan_video(rng, frames=frames, height=height, width=width, categories=categories,
                       max_objects=max_objects, occlusion=occlusion, frame_stride=frame_stride, identity=identity,
                       identity_preset=identity_preset)
    objects, n_obj = scene.objects, len(scene.objects)
    segs = [[None] * frames for _ in range(n_obj)]
    occl = [[OCC_OUT] * frames for _ in range(n_obj)]
    ovis_occl: list[list[str | None]] = [[None] * frames for _ in range(n_obj)]
    areas = [[0] * frames for _ in range(n_obj)]
    boxes: list[list] = [[None] * frames for _ in range(n_obj)]
    images = []
    for f in range(frames):
        image, layers = paint_frame(scene, f)
        for i, (_box, m, _colour), visible in layers:
            full_area, vis_area = int(m.sum()), int(visible.sum())
            if vis_area == 0:
                occl[i][f] = OCC_FULL
                continue
            rle = encode_mask(visible)
            segs[i][f] = rle
            areas[i][f] = vis_area
            ys, xs = np.nonzero(visible)
            boxes[i][f] = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                           float(ys.max() - ys.min() + 1)]
            occl[i][f] = OCC_NONE if vis_area >= PARTIAL_THRESHOLD * full_area else OCC_PARTIAL
            ovis_occl[i][f] = ("no_occlusion" if vis_area >= PARTIAL_THRESHOLD * full_area else
                               "slight_occlusion" if vis_area >= SEVERE_THRESHOLD * full_area else "severe_occlusion")
        images.append(image)
    tracks = []
    for i, o in enumerate(objects):
        if not any(s is not None for s in segs[i]):
            continue  # never visible: not an instance of this video
        tracks.append({"category": o.category, "segmentations": segs[i], "areas": areas[i], "bboxes": boxes[i],
                       "visibility": occl[i], "occlusion": ovis_occl[i]})
    stats = {"events": scene.events}
    return images, tracks, stats


def _parse_size(size: int | tuple[int, int] | list[int] | str) -> tuple[int, int]:
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


def track_statistics(tracks: list[dict]) -> dict:
    """Counts of full occlusions and re-appearances (visible, then fully hidden, then visible again)."""
    full = sum(o == OCC_FULL for tr in tracks for o in tr["visibility"])
    partial = sum(o == OCC_PARTIAL for tr in tracks for o in tr["visibility"])
    reappear = 0
    for tr in tracks:
        seen = hidden = False
        for seg, occ in zip(tr["segmentations"], tr["visibility"]):
            if seg is not None:
                reappear += int(seen and hidden)
                seen, hidden = True, False
            elif seen and occ == OCC_FULL:
                hidden = True  # gaps from leaving the frame alone do not count
    return {"full_occlusion_frames": full, "partial_occlusion_frames": partial, "reappearances": reappear}


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

    height, width = _parse_size(size)
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
    if not 0.0 <= valid_fraction < 1.0:
        raise SpvisError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SpvisError(f"{out}: --out must be a folder, but a file of that name exists")
    n_valid = int(round(videos * valid_fraction))
    if valid_fraction > 0 and videos > 1:
        n_valid = min(max(n_valid, 1), videos - 1)
    split_of = ["train"] * (videos - n_valid) + ["valid"] * n_valid
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
