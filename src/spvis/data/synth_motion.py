"""Motion primitives of the procedural benchmark: object paths, planned occlusion events, depth, camera.

Everything random about where the objects of a synthetic video go (no pixels): smooth trajectories that
bounce off the walls, enter or leave the frame (``make_object``); occluders steered over targets so they hide
fully and re-appear (``level_events``, ``steer_over``); a depth order that puts every occluder in front of its
targets (``assign_depth``); the camera's pan (``camera_path``). The normal scene (``spvis.data.synth_plan``),
the identity-hard scene (``spvis.data.synth_identity``) and the panoptic scenes (``spvis.data.synth_panoptic``)
are built from these. All draws come from the caller's generator, in a fixed order: outputs are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spvis.data.synth_shapes import CATEGORY_SPECS, Appearance, sample_appearance

OCCLUSION_LEVELS = {"none": 0.0, "light": 0.5, "medium": 1.0, "heavy": 2.5}  # planned events per 30 frames
# (ramp in/out, dwell fully hidden) ranges in motion frames: heavier levels pack shorter, denser events
EVENT_TIMING = {"none": ((5, 10), (4, 12)), "light": ((5, 10), (4, 12)), "medium": ((4, 8), (4, 10)),
                "heavy": ((2.5, 5), (2, 6))}


@dataclass
class SceneObject:
    """One object's look and its path at every motion time (depth: paint order, busy: its event windows)."""

    category: int
    app: Appearance
    pos: np.ndarray  # (T, 2) x, y in screen pixels
    radius: np.ndarray  # (T,)
    angle: np.ndarray  # (T,)
    depth: float = 0.0
    busy: list[tuple[int, int]] = field(default_factory=list)


def fold(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect a coordinate path into [lo, hi] (a bounce off the walls)."""
    span = max(hi - lo, 1e-3)
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def smooth_step(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def make_object(rng: np.random.Generator, times: np.ndarray, *, category: int, height: int, width: int,
                 total: int) -> SceneObject:
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
    pos = np.stack([fold(raw[:, 0], margin, width - margin), fold(raw[:, 1], margin, height - margin)], 1)
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
    return SceneObject(category, sample_appearance(rng, spec), pos, radius, angle)


def inside(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bool (N,): (x, y) points inside the frame."""
    return (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)


def steer_over(target: SceneObject, occluder: SceneObject, t: np.ndarray, start: float, ramp: float,
               end: float) -> None:
    """Blend the occluder onto the target's path and grow it to cover the target between the ramps."""
    w = smooth_step((t - start) / ramp) * smooth_step((end - t) / ramp)  # (T,) 0 -> 1 -> 0
    # the occluder glides over the target, grows to cover it, then moves back onto its own path
    occluder.pos = occluder.pos * (1 - w[:, None]) + target.pos * w[:, None]
    cover = 1.2 * target.radius * max(target.app.aspect, 1 / target.app.aspect) / (
        CATEGORY_SPECS[occluder.category].inscribed * min(occluder.app.aspect, 1 / occluder.app.aspect))
    occluder.radius = np.maximum(occluder.radius, w * cover + (1 - w) * occluder.radius)


def windows_overlap(window: tuple[int, int], objects: list[SceneObject], members: tuple[int, ...]) -> bool:
    """True when ``window`` (first, last motion time) meets a busy window of one of ``members``."""
    return any(not (window[1] < s or window[0] > e) for o in members for s, e in objects[o].busy)


def level_events(rng: np.random.Generator, objects: list[SceneObject], times: np.ndarray, level: str,
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
        if windows_overlap(window, objects, (a, b)):
            continue
        A, B = objects[a], objects[b]
        hidden = (t >= start + ramp) & (t <= end - ramp)  # frames where the target should be fully covered
        if hidden.any() and not inside(A.pos[hidden], height, width).all():
            continue  # a target leaving the frame would not re-appear from behind the occluder
        A.busy.append(window)
        B.busy.append(window)
        steer_over(A, B, t, start, ramp, end)
        events.append((b, a, window[0], window[1]))
    return events


def assign_depth(rng: np.random.Generator, objects: list[SceneObject], events: list[tuple[int, int, int, int]]) -> None:
    """Depth of every object: each occluder in front of its targets (a topological order; ties at random)."""
    order = depth_order(rng, len(objects), [(b, a) for b, a, _, _ in events])
    for rank, i in enumerate(order):
        objects[i].depth = float(rank)


def plan_occlusions(rng: np.random.Generator, objects: list[SceneObject], times: np.ndarray, level: str,
                     total: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Steer occluders over targets and order depths: returns events (occluder, target, start, end) in motion time."""
    events = level_events(rng, objects, times, level, total, height, width)
    if events is None:
        return []
    assign_depth(rng, objects, events)
    return events


def depth_order(rng: np.random.Generator, n: int, front_of: list[tuple[int, int]]) -> list[int]:
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


def camera_path(rng: np.random.Generator, times: np.ndarray, pan: int) -> np.ndarray:
    """(T, 2) integer camera offsets inside [0, 2*pan]: a slow drift plus a gentle sway."""
    t = times.astype(np.float64)
    drift = rng.uniform(-1, 1, size=2) * pan / max(t[-1], 1.0)
    sway = rng.uniform(0, 0.3, size=2) * pan
    path = pan + drift[None, :] * (t[:, None] - t[-1] / 2) + sway[None, :] * np.sin(
        2 * np.pi * t[:, None] / rng.uniform(30, 90) + rng.uniform(0, 6.3, size=2))
    return np.clip(np.round(path), 0, 2 * pan).astype(np.int64)
