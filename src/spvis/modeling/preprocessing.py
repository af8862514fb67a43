"""Model-side preprocessing: uint8 RGB frames -> normalised float images zero-padded to SIZE_DIVISIBILITY."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def padded_size(height: int, width: int, size_divisibility: int) -> tuple[int, int]:
    """(Hp, Wp): the size rounded up to a multiple of size_divisibility (unchanged when it is <= 1)."""
    if size_divisibility <= 1:
        return height, width
    return (-(-height // size_divisibility) * size_divisibility, -(-width // size_divisibility) * size_divisibility)


def normalize_and_pad(images: Tensor, pixel_mean: Tensor, pixel_std: Tensor, size_divisibility: int) -> Tensor:
    """images (N, 3, H, W) uint8/float 0-255 RGB -> (N, 3, Hp, Wp) float32, (x - mean) / std, zero padded.

    Same arithmetic as detectron2's ImageList path: subtract then divide in float32, pad with 0 after.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    x = (images.to(pixel_mean.device, torch.float32) - pixel_mean.view(1, 3, 1, 1)) / pixel_std.view(1, 3, 1, 1)
    height, width = x.shape[-2:]
    hp, wp = padded_size(height, width, size_divisibility)
    if (hp, wp) != (height, width):
        x = F.pad(x, (0, wp - width, 0, hp - height), value=0.0)
    return x


def frames_to_tensor(frames_thw3) -> Tensor:
    """numpy/tensor uint8 frames (T, H, W, 3) RGB -> uint8 tensor (T, 3, H, W)."""
    tensor = torch.as_tensor(frames_thw3)
    if tensor.dim() != 4 or tensor.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {tuple(tensor.shape)}")
    return tensor.permute(0, 3, 1, 2).contiguous()
