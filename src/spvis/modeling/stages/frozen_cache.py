"""Disk cache of a frozen segmenter's per-frame outputs for the tracker and refiner stages.

In stages 2 and 3 the segmenter is frozen and runs in eval mode, so its outputs are a pure function of
its weights and of the network input. On CPU that forward is ~75 % of a tracker step, and every frame is
seen many times over training (and over the runs of an ablation that share one segmenter). With
MODEL.FROZEN_CACHE_DIR set, each frame's outputs are stored once, keyed by a hash of the normalised,
padded input tensor (so any augmentation works; a fixed train scale without flips makes frames repeat)
under a fingerprint of the segmenter weights, and read back instead of recomputed. The cache object belongs
to the stage criterion (``build_frozen_cache``), not to the model.

Stored per frame as a safetensors file (no pickle): ``pred_embds`` and ``pred_logits`` in float32,
``mask_features`` and ``pred_masks`` in float16 (halves the disk and page-cache footprint; the rounding,
< 1e-3 relative, is the only difference from an uncached run, and a run is deterministic either way).
Files are written atomically, so processes sharing the folder never read a partial entry.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from spvis.utils.atomic_io import atomic_save

KEYS_FULL = ("pred_embds", "pred_logits")  # small: kept in float32
KEYS_HALF = ("mask_features", "pred_masks")  # (Cm | Q, h, w): float16 on disk


def weights_fingerprint(modules: list[nn.Module]) -> str:
    """Hex digest of the parameters and buffers of ``modules`` (names, shapes and values)."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


class FrozenSegmenterCache:
    """``segment(model, images)`` with per-frame outputs read from / written to ``root/<fingerprint>/``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.folder: Path | None = None
        self.hits = self.misses = 0

    def _folder(self, model: nn.Module) -> Path:
        if self.folder is None:  # after the stage's weights were loaded (first forward)
            self.folder = self.root / weights_fingerprint([model.backbone, model.sem_seg_head])
            self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    @staticmethod
    def frame_key(image: Tensor) -> str:
        """Hash of one normalised, padded input (3, Hp, Wp), with its size."""
        data = image.detach().to("cpu", torch.float32).contiguous().numpy()
        return f"{image.shape[-2]}x{image.shape[-1]}_{hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()}"

    @torch.no_grad()
    def segment(self, model: nn.Module, images: Tensor) -> dict[str, Tensor]:
        """Segmenter outputs for (N, 3, Hp, Wp) images: {pred_embds, pred_logits, pred_masks, mask_features}."""
        from safetensors.torch import load_file, save_file

        folder = self._folder(model)
        paths = [folder / f"{self.frame_key(image)}.safetensors" for image in images]
        frames: list[dict[str, Tensor] | None] = []
        for path in paths:
            try:
                frames.append(load_file(str(path)) if path.is_file() else None)
            except Exception:  # a damaged entry (e.g. disk full earlier) is recomputed
                frames.append(None)
        missing = [i for i, frame in enumerate(frames) if frame is None]
        self.hits += len(frames) - len(missing)
        self.misses += len(missing)
        if missing:
            seg = model.segment(images[missing])
            for row, i in enumerate(missing):
                entry = {k: seg[k][row].detach().to("cpu", torch.float32).contiguous() for k in KEYS_FULL}
                entry.update({k: seg[k][row].detach().to("cpu", torch.float16).contiguous() for k in KEYS_HALF})
                atomic_save(paths[i], lambda tmp, e=entry: save_file(e, tmp))
                frames[i] = entry
        device = images.device
        return {k: torch.stack([frame[k] for frame in frames]).to(device, torch.float32)
                for k in KEYS_FULL + KEYS_HALF}


def build_frozen_cache(cfg) -> FrozenSegmenterCache | None:
    """The disk cache named by MODEL.FROZEN_CACHE_DIR, or None when it is unset (owned by a stage criterion)."""
    root = cfg.MODEL.FROZEN_CACHE_DIR
    return FrozenSegmenterCache(root) if root else None


def frozen_segment(model: nn.Module, images: Tensor,
                   cache: FrozenSegmenterCache | None = None) -> dict[str, Tensor]:
    """The frozen segmenter's outputs for (N, 3, Hp, Wp) images, read through ``cache`` when there is one."""
    return model.segment(images) if cache is None else cache.segment(model, images)


@contextlib.contextmanager
def frozen_parts_in_eval(model: nn.Module, names: tuple[str, ...]) -> Iterator[None]:
    """The named children of ``model`` (those present) in eval mode inside the block, restored after it.

    SPVISModel.train already keeps a stage's frozen parts in eval; this also holds for models that are not
    an SPVISModel (tests' fakes) and for a frozen part called while its owner is in train mode."""
    parts = [m for m in (getattr(model, name, None) for name in names) if isinstance(m, nn.Module)]
    modes = [m.training for m in parts]
    for m in parts:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(parts, modes):
            m.train(mode)
