"""Rendering a planned synthetic video: frames painted front to back and its ground truth per frame.

``paint_frame`` paints frame f of a ``SceneVideo`` (``spvis.data.synth_plan``); ``render_video`` paints every
frame and turns what stays visible of each object into its ground truth: compressed RLE, area, box, and the
per-frame occlusion state in two vocabularies (the generator's own ``visibility`` and OVIS's ``occlusion``).
"""

from __future__ import annotations

import numpy as np

from spvis.data.rle import encode_mask
from spvis.data.synth_identity import IdentityPreset
from spvis.data.synth_plan import SceneVideo, plan_video
from spvis.data.synth_shapes import CATEGORY_SPECS, render_object

OCC_NONE, OCC_PARTIAL, OCC_FULL, OCC_OUT = "no_occlusion", "partial_occlusion", "full_occlusion", "out_of_frame"
PARTIAL_THRESHOLD = 0.9  # visible / in-frame area below this counts as partially occluded
SEVERE_THRESHOLD = 0.5  # visible / in-frame area below this is OVIS "severe_occlusion" (above: "slight")


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
