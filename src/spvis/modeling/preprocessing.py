"""The one image preprocessor: shortest-edge resize, normalise, zero-pad to SIZE_DIVISIBILITY.

Training (``spvis.data.transforms.apply_image`` resizes each clip, ``SPVISModel.prepare_batch`` normalises and pads),
online and offline inference (``Preprocessor``, owned by the model) and the checkpoint bundles all go through the
functions of this module; there is no other resize, normalisation or padding of network inputs in the package.

The resize is bilinear with antialiasing (``F.interpolate(..., antialias=True)``) rounded to integer pixel values,
computed on tensors. Why this one rather than the two it replaces (cv2 in training, PIL in inference):

* it is the same function in the loader (CPU tensors) and in the model (any device): the host uploads the uint8 frame
  at its own size and the device resizes it, so inference has no per-frame host image work;
* enlarging (the synthetic recipes upscale 192x256 frames to 288x384) it is the 2-tap triangle filter that both cv2
  INTER_LINEAR and PIL BILINEAR use, so models trained with cv2 see the inputs they were trained on;
* shrinking (real videos to 360p) it is PIL's antialiased triangle filter, which detectron2 and so the official DVIS
  training and test mappers use: official weights see their own resize, where cv2's INTER_AREA box filter (our
  training) and PIL (our inference) differed before;
* rounding to integers keeps training, which stores uint8 frames, and inference bit-for-bit the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resized_shape(height: int, width: int, short: int, max_size: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge output (h, w): shortest side ``short``, longest at most ``max_size``."""
    scale = short / min(height, width)
    new_h, new_w = (short, scale * width) if height < width else (scale * height, short)
    if max(new_h, new_w) > max_size:
        rescale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * rescale, new_w * rescale
    return max(1, int(new_h + 0.5)), max(1, int(new_w + 0.5))


def padded_size(height: int, width: int, size_divisibility: int) -> tuple[int, int]:
    """(Hp, Wp): the size rounded up to a multiple of size_divisibility (unchanged when it is <= 1)."""
    if size_divisibility <= 1:
        return height, width
    return (-(-height // size_divisibility) * size_divisibility, -(-width // size_divisibility) * size_divisibility)


def resize_images(images: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 or float 0-255 images (N, 3, H, W) -> float32 (N, 3, h, w) with integer values, the one resize.

    Bilinear with antialiasing, then rounded as a uint8 image would be. The filter weights are a convex combination,
    so the output stays in 0..255 without clamping. An image already at ``size`` is returned as float32 unchanged.
    """
    x = images.float()
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True).round_()


def resize_uint8_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (h, w, 3) with ``resize_images`` (the training loader's entry point)."""
    tensor = _host_tensor(image).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
    return resize_images(tensor, size)[0].to(torch.uint8).permute(1, 2, 0).numpy()


def _host_tensor(array: np.ndarray | Tensor) -> Tensor:
    """A tensor sharing ``array``'s memory; a read-only or strided array (PIL, some decoders) is copied first."""
    if isinstance(array, Tensor):
        return array
    return torch.from_numpy(np.require(array, requirements=("C", "W")))


def normalize_and_pad(images: Tensor, pixel_mean: Tensor, pixel_std: Tensor, size_divisibility: int,
                      pad_to: tuple[int, int] | None = None) -> Tensor:
    """images (N, 3, H, W) uint8/float 0-255 RGB -> (N, 3, Hp, Wp) float32, (x - mean) / std, zero padded.

    Same arithmetic as detectron2's ImageList path: subtract then divide in float32, pad with 0 after. (Hp, Wp) is
    the size rounded up to size_divisibility, or ``pad_to`` (a batch's common size, at least the image's).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    x = (images.to(pixel_mean.device, torch.float32) - pixel_mean.view(1, 3, 1, 1)) / pixel_std.view(1, 3, 1, 1)
    height, width = x.shape[-2:]
    hp, wp = padded_size(height, width, size_divisibility) if pad_to is None else pad_to
    if hp < height or wp < width:
        raise ValueError(f"cannot pad images of size {height}x{width} to {hp}x{wp}")
    if (hp, wp) != (height, width):
        x = F.pad(x, (0, wp - width, 0, hp - height), value=0.0)
    return x


def frames_to_tensor(frames_thw3) -> Tensor:
    """numpy/tensor uint8 frames (T, H, W, 3) RGB -> uint8 tensor (T, 3, H, W)."""
    tensor = torch.as_tensor(frames_thw3)
    if tensor.dim() != 4 or tensor.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {tuple(tensor.shape)}")
    return tensor.permute(0, 3, 1, 2).contiguous()


@dataclass
class PreparedFrames:
    """Frames as the network sees them, and the sizes that undo the preparation."""

    images: Tensor  # (N, 3, Hp, Wp) float32 normalised, zero padded, on the model's device
    image_size: tuple[int, int]  # (h, w) resized size before padding
    frame_size: tuple[int, int]  # (H, W) original frame size

    @property
    def padded_size(self) -> tuple[int, int]:
        """(Hp, Wp) of the network input."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])


class Preprocessor(nn.Module):
    """uint8 RGB frames -> resized, normalised, padded network input; mean/std as non-persistent buffers.

    ``normalize_and_pad`` alone serves inputs already at the network's size (training batches, reference bundles);
    calling the module resizes to the test size first (online and offline inference), on the buffers' device.
    """

    def __init__(self, *, pixel_mean: list[float], pixel_std: list[float], size_divisibility: int,
                 min_size_test: int, max_size_test: int):
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32), persistent=False)
        self.size_divisibility = int(size_divisibility)
        self.min_size_test, self.max_size_test = int(min_size_test), int(max_size_test)

    @classmethod
    def from_config(cls, cfg) -> "Preprocessor":
        """MODEL.PIXEL_MEAN / PIXEL_STD / SIZE_DIVISIBILITY and INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST."""
        return cls(pixel_mean=list(cfg.MODEL.PIXEL_MEAN), pixel_std=list(cfg.MODEL.PIXEL_STD),
                   size_divisibility=cfg.MODEL.SIZE_DIVISIBILITY, min_size_test=cfg.INPUT.MIN_SIZE_TEST,
                   max_size_test=cfg.INPUT.MAX_SIZE_TEST)

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) a (height, width) frame is resized to at test time."""
        return resized_shape(height, width, self.min_size_test, self.max_size_test)

    def padded_input_size(self, height: int, width: int) -> tuple[int, int]:
        """(Hp, Wp) of the network input for a (height, width) frame."""
        return padded_size(*self.input_size(height, width), self.size_divisibility)

    def normalize_and_pad(self, images: Tensor, pad_to: tuple[int, int] | None = None) -> Tensor:
        """uint8/float 0-255 RGB (N, 3, H, W) -> normalised (N, 3, Hp, Wp) padded to size_divisibility (or to
        ``pad_to``, a batch's common padded size)."""
        return normalize_and_pad(images, self.pixel_mean, self.pixel_std, self.size_divisibility, pad_to)

    def forward(self, frames: np.ndarray | Tensor) -> PreparedFrames:
        """uint8 RGB frames (N, H, W, 3) or one frame (H, W, 3), numpy or tensor -> PreparedFrames on the device.

        The frames travel to the device as uint8 at their own size; resize, normalisation and padding run there.
        """
        tensor = _host_tensor(frames)
        if tensor.dim() == 3:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 4 or tensor.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames of shape (N, H, W, 3), got {tuple(tensor.shape)}")
        height, width = int(tensor.shape[1]), int(tensor.shape[2])
        size = self.input_size(height, width)
        images = tensor.to(self.pixel_mean.device).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
        return PreparedFrames(self.normalize_and_pad(resize_images(images, size)), size, (height, width))
