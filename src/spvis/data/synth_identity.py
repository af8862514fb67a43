"""The identity-hard scene of ``spvis synth --identity hard`` (see docs/SYNTH_IDENTITY.md).

On the normal scenes every object has its own colour and look and vanishes for a few frames at most, so a
per-frame segmenter's query slots stay on their objects and frame-to-frame association keeps identities. This
scene removes those cues:

* **twins**: several objects of one category and one colour (by default clones: also the same stripes,
  aspect, size and its change, rotation), and each one's straight path passes through an earlier twin's
  position at a chosen time (a crossing, where a front clone hides the back one fully);
* **long occlusions**: a moving occluder glides onto a twin, covers it fully for ``hidden_frames`` output
  frames while both keep moving, then moves back to its own path;
* **exits and re-entries**: a twin leaves through the nearest border, stays outside for ``outside_frames``
  output frames and comes back through the border nearest to where its path continues.

Durations are set in output frames and converted to motion time with ``frame_stride``, so ``--frame-stride 3``
or ``5`` keeps the same hidden and outside lengths in frames. The ``--occlusion`` level's own short events are
planned on top. Everything draws from the video's generator, so the scene is deterministic per seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from spvis.data.synth_motion import (SceneObject, assign_depth, fold, inside, level_events, make_object,
                                     steer_over, windows_overlap)
from spvis.data.synth_shapes import CATEGORY_SPECS, Appearance, sample_appearance

Event = tuple[int, int, int, int]  # (occluder, target, first, last) in motion time


@dataclass(frozen=True)
class IdentityPreset:
    """Knobs of the identity-hard scene; frame counts are output frames (independent of ``--frame-stride``)."""

    twins: int = 3  # look-alike objects of one category and colour (fewer when --max-objects is small)
    clone: bool = True  # twins identical in every respect; False: own stripes, aspect, size and rotation each
    twin_speed: tuple[float, float] = (1.2, 2.6)  # px per motion frame at a 256-pixel short side
    crossing_angle: tuple[float, float] = (np.pi / 2, np.pi)  # heading difference where two twins cross
    hidden_events_per_60: float = 2.0  # long occlusions of a twin per 60 output frames
    hidden_frames: tuple[float, float] = (10.5, 30.0)  # frames a twin stays fully behind its moving occluder
    ramp_frames: tuple[float, float] = (2.0, 4.0)  # frames the occluder needs to glide on and off
    exits: int = 1  # twins that leave the frame and come back per video
    outside_frames: tuple[float, float] = (3.0, 15.0)  # frames a leaving twin stays outside
    leg_frames: float = 3.0  # fewest frames of the run to the border and back
    pad_frames: int = 3  # free frames around a long event or an excursion (no other event of that object)


HARD = IdentityPreset()
NEAR_BORDER = 0.25  # an exit starts where the path is within this fraction of the short side of a border
MAX_LEG_SPEED = 6.0  # px per motion frame at a 256-pixel short side: the fastest run to or from the border


def _twin_categories(rng: np.random.Generator, categories: int) -> tuple[int, int]:
    """(twin category, occluder category): the occluder can cover others and differs from the twins if it may."""
    occluder = int(rng.choice([c for c in range(categories) if CATEGORY_SPECS[c].inscribed >= 0.7]))
    others = [c for c in range(categories) if c != occluder] or [occluder]
    return int(rng.choice(others)), occluder


def _straight_path(rng: np.random.Generator, t: np.ndarray, *, through: np.ndarray, at: int, heading: float,
                   speed: float, margin: float, height: int, width: int) -> np.ndarray:
    """(T, 2) wall-bounced straight path with a gentle wobble that passes ``through`` at motion time ``at``."""
    short = min(height, width)
    wobble = rng.uniform(0, 0.3, size=2) * short / 256.0 * 10
    period, phase = rng.uniform(20, 60), rng.uniform(0, 6.3, size=2)
    unit = np.array([np.cos(heading), np.sin(heading)])
    sway = wobble[None, :] * (np.sin(2 * np.pi * t[:, None] / period + phase) - np.sin(2 * np.pi * at / period + phase))
    raw = through[None, :] + speed * (t - at)[:, None] * unit[None, :] + sway
    return np.stack([fold(raw[:, 0], margin, width - margin), fold(raw[:, 1], margin, height - margin)], 1)


def _heading_at(pos: np.ndarray, k: int) -> float:
    """Direction of motion of a path at index ``k`` (central difference)."""
    a, b = pos[max(k - 1, 0)], pos[min(k + 1, len(pos) - 1)]
    return float(math.atan2(b[1] - a[1], b[0] - a[0]))


def _twin_looks(rng: np.random.Generator, t: np.ndarray, *, count: int, category: int, short: int,
                clone: bool) -> list[tuple[Appearance, np.ndarray, np.ndarray]]:
    """(appearance, radius (T,), angle (T,)) of each twin: all one clone, or one colour with own texture,
    aspect, size and rotation each."""
    spec = CATEGORY_SPECS[category]
    looks = []
    for j in range(1 if clone else count):
        app = sample_appearance(rng, spec)
        if looks:
            app = replace(app, color=looks[0][0].color)  # same colour, own stripes and aspect
        radius = rng.uniform(0.08, 0.12) * short * np.exp(
            rng.uniform(0.05, 0.15) * np.sin(2 * np.pi * t / rng.uniform(25, 70) + rng.uniform(0, 6.3)))
        angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.04, 0.04) * t
        looks.append((app, radius, angle))
    return looks * count if clone else looks


def crossing_twins(rng: np.random.Generator, t: np.ndarray, *, count: int, category: int, height: int,
                   width: int, preset: IdentityPreset = HARD) -> tuple[list[SceneObject], list[list[int]]]:
    """``count`` look-alike objects of one category and colour whose paths cross: (objects, crossing motion
    times of each object). Clones (``preset.clone``) also share size and rotation, so where two coincide the
    front one hides the other fully."""
    total, short = len(t), min(height, width)
    looks = _twin_looks(rng, t, count=count, category=category, short=short, clone=preset.clone)
    margin = min(float(radius.min()) for _, radius, _ in looks)  # one margin: crossing points stay put by the fold
    objects: list[SceneObject] = []
    crossings: list[list[int]] = [[] for _ in range(count)]
    for j, (app, radius, angle) in enumerate(looks):
        speed = rng.uniform(*preset.twin_speed) * short / 256.0
        if j == 0:
            through, at = np.array([rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)]), 0
            heading = rng.uniform(0, 2 * np.pi)
        else:
            other = int(rng.integers(j))
            at = int(round(rng.uniform(0.15, 0.85) * (total - 1)))
            through = objects[other].pos[at].copy()
            turn = rng.choice([-1.0, 1.0]) * rng.uniform(*preset.crossing_angle)
            heading = _heading_at(objects[other].pos, at) + turn
            crossings[other].append(at)
            crossings[j].append(at)
        pos = _straight_path(rng, t.astype(np.float64), through=through, at=at, heading=heading, speed=speed,
                             margin=margin, height=height, width=width)
        objects.append(SceneObject(category, app, pos, radius.copy(), angle.copy()))
    return objects, crossings


def _to_border(point: np.ndarray, height: int, width: int) -> tuple[float, np.ndarray]:
    """(distance, outward unit normal) of the frame border nearest to ``point``."""
    x, y = float(point[0]), float(point[1])
    options = [(x, (-1.0, 0.0)), (width - x, (1.0, 0.0)), (y, (0.0, -1.0)), (height - y, (0.0, 1.0))]
    dist, normal = min(options, key=lambda o: o[0])
    return dist, np.array(normal)


def _leg(point: np.ndarray, rng: np.random.Generator, *, reach: float, height: int, width: int,
         max_speed: float, min_time: float) -> tuple[np.ndarray, float, float]:
    """A straight run from ``point`` until the object is fully outside: (unit direction, speed, duration)."""
    dist, normal = _to_border(point, height, width)
    tilt = rng.uniform(-0.4, 0.4)
    c, s = math.cos(tilt), math.sin(tilt)
    direction = np.array([c * normal[0] - s * normal[1], s * normal[0] + c * normal[1]])
    length = (dist + reach) / c  # the normal component must carry the centre ``reach`` beyond the border
    duration = max(min_time, length / max_speed)
    return direction, length / duration, duration


def exit_and_return(rng: np.random.Generator, obj: SceneObject, t: np.ndarray, *, stride: int, keep: list[int],
                    preset: IdentityPreset, height: int, width: int) -> bool:
    """Send ``obj`` out through the nearest border and back in on its own path; False when no window fits."""
    total, short = len(t), min(height, width)
    reach = float(obj.radius.max()) * max(obj.app.aspect, 1 / obj.app.aspect) + 2.0
    max_speed, min_leg = MAX_LEG_SPEED * short / 256.0, preset.leg_frames * stride
    pad = preset.pad_frames * stride
    near = [k for k in range(3 * stride, int(0.6 * total))
            if _to_border(obj.pos[k], height, width)[0] < NEAR_BORDER * short]
    for _ in range(12):
        if not near:
            return False
        k1 = int(rng.choice(near))
        u1, v1, l1 = _leg(obj.pos[k1], rng, reach=reach, height=height, width=width, max_speed=max_speed,
                          min_time=min_leg)
        outside = rng.uniform(*preset.outside_frames) * stride
        k2 = _return_time(obj.pos, k1 + l1 + outside, reach=reach, height=height, width=width,
                          max_speed=max_speed, min_leg=min_leg, last=total - 1 - 3 * stride)
        if k2 is None:
            continue
        window = (k1 - pad, k2 + pad)
        if any(window[0] <= c <= window[1] for c in keep) or any(not (window[1] < s or window[0] > e)
                                                               for s, e in obj.busy):
            continue
        u2, v2, l2 = _leg(obj.pos[k2], rng, reach=reach, height=height, width=width, max_speed=max_speed,
                          min_time=min_leg)
        _replace_with_excursion(obj, t, k1=k1, k2=k2, out=(u1, v1), back=(u2, v2), turn=(k1 + l1 + k2 - l2) / 2)
        obj.busy.append(window)
        return True
    return False


def _return_time(pos: np.ndarray, earliest: float, *, reach: float, height: int, width: int, max_speed: float,
                 min_leg: float, last: int) -> int | None:
    """First motion time >= ``earliest`` + its own run-in time at which a path can be re-entered, or None."""
    for k2 in range(int(math.ceil(earliest)), last + 1):
        dist, _ = _to_border(pos[k2], height, width)
        run_in = max(min_leg, (dist + reach) / 0.92 / max_speed)  # cos(0.4) > 0.92: the longest tilted run
        if k2 - run_in >= earliest:
            return k2
    return None


def _replace_with_excursion(obj: SceneObject, t: np.ndarray, *, k1: int, k2: int, out: tuple[np.ndarray, float],
                            back: tuple[np.ndarray, float], turn: float) -> None:
    """Between k1 and k2 the object runs out along ``out`` and, after ``turn``, comes back along ``back``."""
    (u1, v1), (u2, v2) = out, back
    span = (t > k1) & (t < k2)
    leaving = span & (t <= turn)
    coming = span & (t > turn)
    start, end = obj.pos[k1].copy(), obj.pos[k2].copy()
    obj.pos[leaving] = start[None, :] + (t[leaving] - k1)[:, None] * v1 * u1[None, :]
    obj.pos[coming] = end[None, :] + (k2 - t[coming])[:, None] * v2 * u2[None, :]


def long_occlusions(rng: np.random.Generator, objects: list[SceneObject], t: np.ndarray, *, targets: list[int],
                    occluders: list[int], stride: int, frames: int, preset: IdentityPreset, height: int,
                    width: int) -> list[Event]:
    """Moving occluders that hide twins for ``preset.hidden_frames`` frames: events (occluder, target, first, last)."""
    total = len(t)
    count = max(1, int(round(preset.hidden_events_per_60 * frames / 60.0)))
    pad = preset.pad_frames * stride
    tf = t.astype(np.float64)
    events: list[Event] = []
    for _ in range(count * 8):
        if len(events) >= count:
            break
        dwell = rng.uniform(*preset.hidden_frames) * stride
        ramp = rng.uniform(*preset.ramp_frames) * stride
        if total < 2 * ramp + dwell + 4:
            break
        start = rng.uniform(1, total - 2 * ramp - dwell - 2)
        end = start + 2 * ramp + dwell
        a = int(rng.choice(targets))
        b = int(rng.choice([o for o in occluders if o != a]))
        window = (int(start) - pad, int(math.ceil(end)) + pad)
        if windows_overlap(window, objects, (a, b)):
            continue
        hidden = (tf >= start + ramp) & (tf <= end - ramp)
        if not inside(objects[a].pos[hidden], height, width).all():
            continue
        objects[a].busy.append(window)
        objects[b].busy.append(window)
        steer_over(objects[a], objects[b], tf, start, ramp, end)
        events.append((b, a, int(start), int(math.ceil(end))))
    return events


def hard_identity_scene(rng: np.random.Generator, dense: np.ndarray, *, frame_stride: int, height: int, width: int,
                        categories: int, max_objects: int, occlusion: str,
                        preset: IdentityPreset = HARD) -> tuple[list[SceneObject], list[Event]]:
    """Objects of ``--identity hard`` (twins that cross, leave and come back, hidden long by moving occluders)
    with their depths set: (objects, occlusion events)."""
    total = len(dense)
    frames = (total - 1) // frame_stride + 1
    n_twins = max(2, min(preset.twins, max_objects - 1))
    twin_cat, occluder_cat = _twin_categories(rng, categories)
    twins, crossings = crossing_twins(rng, dense, count=n_twins, category=twin_cat, height=height, width=width,
                                      preset=preset)
    occluder = make_object(rng, dense, category=occluder_cat, height=height, width=width, total=total)
    extra = rng.integers(0, categories, size=max(max_objects - n_twins - 1, 0))
    others = [make_object(rng, dense, category=int(c), height=height, width=width, total=total) for c in extra]
    objects = [*twins, occluder, *others]
    exits = 0
    for i in rng.permutation(n_twins):  # the first twins whose paths leave room for an excursion
        if exits < preset.exits:
            exits += exit_and_return(rng, objects[int(i)], dense.astype(np.float64), stride=frame_stride,
                                     keep=crossings[int(i)], preset=preset, height=height, width=width)
    occluders = [i for i, o in enumerate(objects) if i >= n_twins and CATEGORY_SPECS[o.category].inscribed >= 0.7]
    events = long_occlusions(rng, objects, dense, targets=list(range(n_twins)), occluders=occluders,
                             stride=frame_stride, frames=frames, preset=preset, height=height, width=width)
    events += level_events(rng, objects, dense, occlusion, total, height, width) or []
    assign_depth(rng, objects, events)
    return objects, events
