"""SPVISModel: backbone + segmenter head (+ tracker, + refiner), with pre-processing and stage dispatch.

Training: ``model(batch, iteration=i, max_iter=n)`` takes the clip dicts of ``spvis.data.clip_dataset`` and
returns the weighted loss dict of the stage named by ``cfg.STAGE``, computed by the stage criterion the model
was built with (``spvis.modeling.stages.stage_criterion``). Inference is the model's too (``spvis.modeling.inference``):
``init_state`` / ``track_frame`` online, ``init_offline_state`` / ``encode_frames`` / ``select_tracks`` /
``decode_masks`` offline, ``init_segmentation_state`` / ``parse_frame`` for video panoptic and
semantic segmentation, all through the one ``Preprocessor``; ``model.segment(images)`` runs the per-frame
segmenter on normalised, padded images. The engines in ``spvis.engine`` only feed frames and write results.
"""

from __future__ import annotations

import importlib

import torch
from torch import Tensor, nn

from spvis.errors import ConfigError
from spvis.modeling.backbone import build_backbone
from spvis.modeling.inference import OfflineInferenceMixin, OnlineInferenceMixin, SegmentationInferenceMixin
from spvis.modeling.mask_former_head import MaskFormerHead
from spvis.modeling.preprocessing import Preprocessor, padded_size
from spvis.modeling.stages.stage_criterion import StageCriterion, build_stage_criterion

# The children each training stage trains; every other child is frozen: no gradients (engine.optim) and
# always in eval mode (``SPVISModel.train``), so dropout / stochastic depth never run inside a frozen part.
STAGE_TRAINED_CHILDREN = {"segmenter": ("backbone", "sem_seg_head"), "tracker": ("tracker",), "refiner": ("refiner",)}


class SPVISModel(OnlineInferenceMixin, OfflineInferenceMixin, SegmentationInferenceMixin, nn.Module):
    """The whole video instance segmentation model; children use the official checkpoint names (the
    ``preprocessor`` holds only non-persistent buffers: no checkpoint keys)."""

    def __init__(self, *, backbone: nn.Module, sem_seg_head: MaskFormerHead, tracker: nn.Module | None,
                 refiner: nn.Module | None, preprocessor: Preprocessor, stage: str = "segmenter",
                 criterion: StageCriterion | None = None):
        super().__init__()
        self.preprocessor = preprocessor
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.tracker = tracker
        self.refiner = refiner
        self.stage = stage
        # the stage's loss: a plain object, not a child module (no checkpoint keys, not moved by .to())
        self.criterion = criterion

    @classmethod
    def from_config(cls, cfg) -> "SPVISModel":
        """Build every part named by the config and the criterion of cfg.STAGE (random init; weights are
        loaded separately)."""
        backbone = build_backbone(cfg)
        head = MaskFormerHead.from_config(cfg, backbone.output_shape())
        tracker = refiner = None
        if cfg.MODEL.TRACKER.ENABLED:
            tracker = importlib.import_module("spvis.modeling.tracker").build_tracker(cfg)
        if cfg.MODEL.REFINER.ENABLED:
            if tracker is None:
                raise ConfigError("MODEL.REFINER.ENABLED needs MODEL.TRACKER.ENABLED (the refiner reads tracker output)")
            refiner = importlib.import_module("spvis.modeling.refiner").build_refiner(cfg)
        return cls(backbone=backbone, sem_seg_head=head, tracker=tracker, refiner=refiner,
                   preprocessor=Preprocessor.from_config(cfg), stage=cfg.STAGE, criterion=build_stage_criterion(cfg))

    def frozen_children(self) -> list[nn.Module]:
        """The parts with weights this stage does not train (none for an unknown stage name: nothing is assumed); the
        weightless preprocessor is no part of it and follows the model's mode."""
        trained = STAGE_TRAINED_CHILDREN.get(self.stage)
        if trained is None:
            return []
        return [module for name, module in self.named_children()
                if name not in trained and next(module.parameters(), None) is not None]

    def train(self, mode: bool = True) -> "SPVISModel":
        """As nn.Module.train, but the stage's frozen parts stay in eval mode (DVIS runs them in eval: with
        Swin's DROP_PATH_RATE, stochastic depth would otherwise run inside the "frozen" segmenter)."""
        super().train(mode)
        for module in self.frozen_children():
            module.train(False)
        return self

    @property
    def device(self) -> torch.device:
        """The model's device (read from the preprocessor's buffers, as detectron2 does)."""
        return self.preprocessor.pixel_mean.device

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8/float 0-255 RGB (N, 3, H, W) at the network's size -> normalised (N, 3, Hp, Wp), zero padded."""
        return self.preprocessor.normalize_and_pad(images)

    def segment(self, images: Tensor) -> dict:
        """Per-frame segmenter on normalised, padded images (N, 3, Hp, Wp) -> head dict (see INTERFACES.md)."""
        return self.sem_seg_head(self.backbone(images))

    def forward(self, batch: list[dict], *, iteration: int = 0, max_iter: int = 1) -> dict[str, Tensor]:
        """Weighted training losses of this stage for a list of clip dicts at ``iteration`` of ``max_iter`` (the
        schedules' position; the default is the start of training). The trainer sums them.

        The stage criterion runs inside this forward, not around it in the trainer: under DDP the trainer calls
        ``DistributedDataParallel(model)(batch, iteration=..., max_iter=...)``, and DDP prepares its gradient
        all-reduce for the graph built inside its own forward (with find_unused_parameters it also walks that
        graph from these outputs). A loss built from ``model.module`` parts outside DDP's forward would
        backpropagate with no gradient sync between processes.
        """
        if self.criterion is None:
            raise ConfigError("this model has no training criterion: build it with SPVISModel.from_config(cfg)")
        images, targets, clip_len = self.prepare_batch(batch)
        return self.criterion(self, images, targets, clip_len, int(iteration), int(max_iter))

    def prepare_batch(self, batch: list[dict]) -> tuple[Tensor, list[dict], int]:
        """Clip dicts -> (images (B*T, 3, Hp, Wp) normalised, targets per clip, T); all clips share (Hp, Wp)."""
        if not batch:
            raise ValueError("empty training batch")
        clip_len = int(batch[0]["frames"].shape[0])
        height = max(int(clip["frames"].shape[-2]) for clip in batch)
        width = max(int(clip["frames"].shape[-1]) for clip in batch)
        hp, wp = padded_size(height, width, self.preprocessor.size_divisibility)
        images, targets = [], []
        for clip in batch:
            frames = clip["frames"].to(self.device)  # (T, 3, H, W) uint8
            if frames.shape[0] != clip_len:
                raise ValueError(f"clips in one batch must have the same length ({frames.shape[0]} != {clip_len})")
            h, w = frames.shape[-2:]
            images.append(self.preprocessor.normalize_and_pad(frames, pad_to=(hp, wp)))
            masks = clip["masks"].to(self.device)  # (T, N, H, W) bool
            padded = torch.zeros((masks.shape[1], clip_len, hp, wp), dtype=torch.float32, device=self.device)
            padded[:, :, :h, :w] = masks.permute(1, 0, 2, 3).float()
            targets.append({
                "labels": clip["labels"].to(self.device).long(),
                "ids": clip["ids"].to(self.device).long(),
                "masks": padded,  # (N, T, Hp, Wp)
                "present": clip["present"].to(self.device).transpose(0, 1).bool(),  # (N, T)
            })
        return torch.cat(images, 0), targets, clip_len


def build_model(cfg, source: str) -> SPVISModel:
    """``SPVISModel.from_config(cfg)``, with sizes that build no model as a one-line ConfigError naming ``source``
    (the config file): channels a GroupNorm cannot split, or a model larger than this machine's memory. Found by the
    fuzz suite, where such a config was an allocator or torch.nn traceback."""
    try:
        return SPVISModel.from_config(cfg)
    except MemoryError:
        raise ConfigError(f"{source}: the model this config describes does not fit in memory (check the sizes "
                          f"under MODEL)") from None
    except RuntimeError as exc:
        text = str(exc)
        if "can't allocate memory" not in text and "not enough memory" not in text:
            raise
        raise ConfigError(f"{source}: the model this config describes does not fit in memory (check the sizes "
                          f"under MODEL): {text.strip().splitlines()[-1][:200]}") from None
    except ValueError as exc:  # torch.nn's own argument checks, e.g. "num_channels (16) must be divisible by ..."
        raise ConfigError(f"{source}: its sizes do not build a model: {' '.join(str(exc).split())[:300]}") from None
