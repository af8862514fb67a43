"""The one preprocessor: training and inference resize, normalise and pad a frame identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from spvis.data.transforms import apply_image, sample_clip_transform
from spvis.modeling.preprocessing import Preprocessor, resize_images, resize_uint8_image, resized_shape

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _frame(height: int = 60, width: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 255, (height // 4 + 1, width // 4 + 1, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(smooth).resize((width, height), Image.BICUBIC))  # natural-ish content


def test_resize_rule_is_detectron2s():
    assert resized_shape(480, 854, 360, 1333) == (360, 641)
    assert resized_shape(128, 192, 128, 1333) == (128, 192)
    assert resized_shape(100, 1000, 360, 1333) == (133, 1333)


@pytest.mark.parametrize("short, max_size", [(90, 200), (45, 200), (60, 1000)])  # enlarge, shrink, unchanged
def test_training_and_inference_see_the_same_pixels(short, max_size):
    """A clip resized by the training loader, normalised and padded by ``prepare_batch``'s path, equals the frame
    as online / offline inference prepares it."""
    frame = _frame()
    tf = sample_clip_transform(None, 60, 80, min_sizes=[short], max_size=max_size)
    trained = torch.from_numpy(np.array(apply_image(frame, tf))).permute(2, 0, 1)[None]  # (1, 3, h, w), as the loader
    pre = Preprocessor(pixel_mean=MEAN, pixel_std=STD, size_divisibility=32, min_size_test=short,
                       max_size_test=max_size)
    prepared = pre(frame)
    assert prepared.image_size == (tf.out_h, tf.out_w) and prepared.frame_size == (60, 80)
    assert torch.equal(pre.normalize_and_pad(trained), prepared.images)
    assert prepared.padded_size == tuple(-(-s // 32) * 32 for s in prepared.image_size)
    assert torch.equal(prepared.images[..., tf.out_h:, :], torch.zeros_like(prepared.images[..., tf.out_h:, :]))


def test_the_resize_enlarges_like_cv2_and_shrinks_like_pil():
    """Why this resize (module docstring): enlarging it is cv2's INTER_LINEAR (the synthetic recipes' training
    resize), shrinking it is PIL's antialiased bilinear (detectron2's, so the official weights')."""
    import cv2

    frame = _frame(96, 128)
    up = resize_uint8_image(frame, (144, 192)).astype(int)
    assert np.abs(up - cv2.resize(frame, (192, 144), interpolation=cv2.INTER_LINEAR).astype(int)).max() <= 1
    down = resize_uint8_image(frame, (60, 80)).astype(int)
    pil = np.asarray(Image.fromarray(frame).resize((80, 60), Image.BILINEAR)).astype(int)
    assert np.abs(down - pil).max() <= 1


def test_resize_keeps_values_integral_and_in_range():
    images = torch.from_numpy(_frame()).permute(2, 0, 1)[None]
    out = resize_images(images, (37, 51))
    assert out.dtype == torch.float32 and out.shape == (1, 3, 37, 51)
    assert torch.equal(out, out.round()) and out.min() >= 0 and out.max() <= 255
    assert torch.equal(resize_images(images, (60, 80)), images.float())  # already at size: unchanged
