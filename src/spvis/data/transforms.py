"""Clip-consistent geometric augmentation: one resize / crop / flip drawn per clip, applied to every frame.

Follows the DVIS training recipe (reference §7): shortest edge chosen per clip from a list with a
longest-edge limit (detectron2's rule, the test-time one); optional crop with probability 0.5 (pre-resize to a
shortest edge from ``CROP.PRE_RESIZE``, then an absolute-range crop); horizontal flip per clip. The crop is
expressed in original pixel coordinates so each frame is cropped, then resized once, by the model's resize
(``spvis.modeling.preprocessing``: training and inference resize alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spvis.modeling.preprocessing import resize_uint8_image, resized_shape


@dataclass(frozen=True)
class ClipTransform:
    """Crop box (y0, x0, y1, x1) in source pixels, output size and flip, shared by all frames of a clip."""

    crop: tuple[int, int, int, int]
    out_h: int
    out_w: int
    flip: bool


def sample_clip_transform(rng: np.random.Generator | None, height: int, width: int, *,
                          min_sizes: list[int], max_size: int, flip: bool = False, crop: bool = False,
                          crop_pre_sizes: list[int] | None = None,
                          crop_size: list[int] | None = None) -> ClipTransform:
    """Draw one clip transform (``rng`` None = deterministic test-time resize, first size, no flip/crop)."""
    box = (0, 0, height, width)
    if rng is not None and crop and crop_size and rng.random() < 0.5:
        pre_short = int(rng.choice(crop_pre_sizes or [min(height, width)]))
        ph, pw = resized_shape(height, width, pre_short, 10 ** 9)
        lo, hi = int(crop_size[0]), int(crop_size[-1])
        ch = int(rng.integers(min(lo, ph), min(hi, ph) + 1))
        cw = int(rng.integers(min(lo, pw), min(hi, pw) + 1))
        y0 = int(rng.integers(0, ph - ch + 1))
        x0 = int(rng.integers(0, pw - cw + 1))
        sy, sx = height / ph, width / pw
        y0s, x0s = int(round(y0 * sy)), int(round(x0 * sx))
        y1s, x1s = max(y0s + 1, int(round((y0 + ch) * sy))), max(x0s + 1, int(round((x0 + cw) * sx)))
        box = (y0s, x0s, min(y1s, height), min(x1s, width))
    short = int(rng.choice(min_sizes)) if rng is not None else int(min_sizes[0])
    out_h, out_w = resized_shape(box[2] - box[0], box[3] - box[1], short, max_size)
    do_flip = bool(rng is not None and flip and rng.random() < 0.5)
    return ClipTransform(box, out_h, out_w, do_flip)


def apply_image(image: np.ndarray, tf: ClipTransform) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (out_h, out_w, 3): crop, the model's resize (``spvis.modeling.preprocessing``), flip."""
    y0, x0, y1, x1 = tf.crop
    img = image[y0:y1, x0:x1]
    if img.shape[0] != tf.out_h or img.shape[1] != tf.out_w:
        img = resize_uint8_image(img, (tf.out_h, tf.out_w))
    if tf.flip:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def apply_masks(masks: np.ndarray, tf: ClipTransform) -> np.ndarray:
    """bool (N, H, W) -> bool (N, out_h, out_w): crop, nearest resize, flip."""
    import cv2

    y0, x0, y1, x1 = tf.crop
    m = masks[:, y0:y1, x0:x1]
    n = m.shape[0]
    if n == 0:
        return np.zeros((0, tf.out_h, tf.out_w), dtype=bool)
    if m.shape[1] != tf.out_h or m.shape[2] != tf.out_w:
        out = np.empty((n, tf.out_h, tf.out_w), dtype=bool)
        for start in range(0, n, 256):  # OpenCV handles at most 512 channels
            chunk = np.ascontiguousarray(m[start:start + 256].transpose(1, 2, 0)).astype(np.uint8)
            res = cv2.resize(chunk, (tf.out_w, tf.out_h), interpolation=cv2.INTER_NEAREST)
            out[start:start + 256] = (res.reshape(tf.out_h, tf.out_w, -1) > 0).transpose(2, 0, 1)
        m = out
    if tf.flip:
        m = m[:, :, ::-1]
    return np.ascontiguousarray(m)


def rotate(image: np.ndarray, masks: np.ndarray, degrees: float, center: tuple[float, float]) -> tuple[np.ndarray,
                                                                                                        np.ndarray]:
    """Rotate an image (H, W, 3) bilinearly and masks (N, H, W) by nearest about ``center`` (x, y), no expand."""
    import cv2

    h, w = image.shape[:2]
    mat = cv2.getRotationMatrix2D(center, degrees, 1.0)
    img = cv2.warpAffine(image, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    out = np.zeros_like(masks)
    for i in range(masks.shape[0]):
        out[i] = cv2.warpAffine(masks[i].astype(np.uint8), mat, (w, h), flags=cv2.INTER_NEAREST) > 0
    return img, out
