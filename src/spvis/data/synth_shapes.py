"""Shapes, colours and textures of the procedural benchmark (see ``spvis.data.synth``).

Each category is a shape plus a colour family, so the classes differ visibly; per instance the hue,
saturation, brightness, aspect ratio and a stripe texture vary. Shapes are evaluated on rotated,
normalised object coordinates (u, v), with the shape's circumradius at 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.72


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # equilateral triangle with circumradius 1, apex up (v grows downwards in image space)
    return (v <= 0.5) & (np.sqrt(3.0) * u - v <= 1.0) & (-np.sqrt(3.0) * u - v <= 1.0)


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)
    return r <= 0.6 + 0.4 * np.cos(5.0 * theta)


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 <= 1.0) & (r2 >= 0.3)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.32) & (av <= 0.95)) | ((av <= 0.32) & (au <= 0.95))


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(u) + np.abs(v) <= 1.0


def _hexagon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return np.maximum(au * 0.8660254 + av * 0.5, av) <= 0.87


@dataclass(frozen=True)
class CategorySpec:
    """A synthetic category: name, shape test, base hue (degrees) and inscribed radius (for occluders)."""

    name: str
    shape: Callable[[np.ndarray, np.ndarray], np.ndarray]
    hue: float
    inscribed: float


# The first two are good occluders (large inscribed radius), so every category count can occlude.
CATEGORY_SPECS = [
    CategorySpec("red_disc", _disc, 0.0, 1.0),
    CategorySpec("green_square", _square, 120.0, 0.72),
    CategorySpec("blue_triangle", _triangle, 225.0, 0.5),
    CategorySpec("yellow_star", _star, 55.0, 0.2),
    CategorySpec("magenta_ring", _ring, 300.0, 0.0),
    CategorySpec("cyan_cross", _cross, 185.0, 0.32),
    CategorySpec("orange_diamond", _diamond, 28.0, 0.707),
    CategorySpec("violet_hexagon", _hexagon, 265.0, 0.75),
]
MAX_CATEGORIES = len(CATEGORY_SPECS)


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """RGB in [0, 255] (float32, (3,)) of a hue in degrees and saturation/value in [0, 1]."""
    h = (h % 360.0) / 60.0
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    m = v - c
    i = int(h) % 6
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][i]
    return (np.array(rgb, dtype=np.float32) + m) * 255.0


@dataclass
class Appearance:
    """Per-instance look: base colour, stripe texture (frequency, direction, strength), aspect ratio."""

    color: np.ndarray  # (3,) float32 RGB 0-255
    stripe_freq: float
    stripe_dir: float
    stripe_amp: float
    aspect: float


def sample_appearance(rng: np.random.Generator, spec: CategorySpec) -> Appearance:
    """Random per-instance appearance inside the category's colour family."""
    hue = spec.hue + rng.uniform(-10.0, 10.0)
    color = hsv_to_rgb(hue, rng.uniform(0.65, 1.0), rng.uniform(0.7, 1.0))
    return Appearance(color=color, stripe_freq=float(rng.uniform(1.5, 4.0)),
                      stripe_dir=float(rng.uniform(0, np.pi)), stripe_amp=float(rng.uniform(0.1, 0.35)),
                      aspect=float(np.exp(rng.uniform(-0.2, 0.2))))


def render_object(spec: CategorySpec, app: Appearance, *, cx: float, cy: float, radius: float, angle: float,
                  height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """Mask and colours of one object inside its bounding box, clipped to the frame.

    Returns ((y0, y1, x0, x1), mask bool (h, w), colour float32 (h, w, 3)), or None when off-frame.
    """
    reach = radius * max(app.aspect, 1.0 / app.aspect) + 1.0
    x0, x1 = max(int(np.floor(cx - reach)), 0), min(int(np.ceil(cx + reach)) + 1, width)
    y0, y1 = max(int(np.floor(cy - reach)), 0), min(int(np.ceil(cy + reach)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx  # (w,)
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5 - cy  # (h,)
    ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = (xs[None, :] * ca + ys[:, None] * sa) / (radius * app.aspect)  # (h, w)
    v = (-xs[None, :] * sa + ys[:, None] * ca) / (radius / app.aspect)  # (h, w)
    mask = spec.shape(u, v)
    if not mask.any():
        return None
    phase = (u * np.cos(app.stripe_dir) + v * np.sin(app.stripe_dir)) * (app.stripe_freq * np.pi)
    shade = 1.0 - app.stripe_amp * (0.5 + 0.5 * np.sin(phase))  # (h, w)
    rim = np.clip(1.15 - 0.25 * (u * u + v * v), 0.75, 1.0)  # darker towards the rim
    colour = app.color[None, None, :] * (shade * rim)[:, :, None]
    return (y0, y1, x0, x1), mask, colour


def make_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A desaturated multi-scale noise texture, float32 (height, width, 3) in 0-255."""
    import cv2

    base = hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.25), rng.uniform(0.35, 0.65))
    tint = hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.3), 1.0) / 255.0
    field = np.zeros((height, width), dtype=np.float32)
    for cell, amp in ((64, 0.5), (16, 0.3), (4, 0.2)):
        small = rng.standard_normal((max(height // cell, 2), max(width // cell, 2))).astype(np.float32)
        field += amp * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    stripes = 0.15 * np.sin(np.arange(width, dtype=np.float32)[None, :] * rng.uniform(0.02, 0.08)
                            + np.arange(height, dtype=np.float32)[:, None] * rng.uniform(0.02, 0.08))
    field = field + stripes
    img = base[None, None, :] * (1.0 + 0.35 * field[:, :, None]) * (0.8 + 0.2 * tint[None, None, :])
    return np.clip(img, 0, 255).astype(np.float32)
