"""Helpers for the training-engine tests: a tiny model obeying the SPVISModel training contract, data, configs.

The model has the meta-architecture's children names (``backbone``, ``sem_seg_head``) so the optimiser's
backbone-LR and norm/embedding rules apply, uses randomness (dropout, random point sampling) like the real
losses, and learns a real task (foreground masks of the synthetic clips), so its loss can fall.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spvis.config import get_cfg


class TinyClipModel(nn.Module):
    """``model(batch: list[clip dict], iteration=, max_iter=) -> {"loss_mask", "loss_dice", "loss_embed"}`` on
    foreground masks (no schedules: the iteration is accepted as the trainer passes it)."""

    def __init__(self, size: int = 32, *, sigterm_at_call: int | None = None):
        super().__init__()
        self.size = size
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.sem_seg_head = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(8, 1, 1))
        self.query_feat = nn.Embedding(4, 8)
        self.register_buffer("pixel_mean", torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1), persistent=False)
        self.calls, self.sigterm_at_call = 0, sigterm_at_call

    def forward(self, batch: list[dict], *, iteration: int = 0, max_iter: int = 1) -> dict[str, torch.Tensor]:
        self.calls += 1
        if self.sigterm_at_call is not None and self.calls == self.sigterm_at_call:
            os.kill(os.getpid(), __import__("signal").SIGTERM)  # arrives mid-step, like a real preemption
        device = self.pixel_mean.device
        images = torch.cat([c["frames"].to(device).float() for c in batch])  # (N, 3, H, W)
        images = F.interpolate((images - self.pixel_mean) / self.pixel_std, size=(self.size, self.size),
                               mode="bilinear", align_corners=False)
        targets = torch.cat([c["masks"].any(dim=1, keepdim=True).float() for c in batch]).to(device)  # (N, 1, H, W)
        targets = F.interpolate(targets, size=(self.size, self.size), mode="nearest")
        logits = self.sem_seg_head(self.backbone(images))  # (N, 1, s, s)
        points = torch.randint(0, self.size * self.size, (64,), device=device)  # random point sampling
        pl, pt = logits.flatten(1)[:, points], targets.flatten(1)[:, points]
        probs = logits.sigmoid().flatten(1)
        inter = (probs * targets.flatten(1)).sum(1)
        dice = 1 - (2 * inter + 1) / (probs.sum(1) + targets.flatten(1).sum(1) + 1)
        return {"loss_mask": 5.0 * F.binary_cross_entropy_with_logits(pl, pt),
                "loss_dice": 5.0 * dice.mean(),
                "loss_embed": 1e-3 * self.query_feat.weight.pow(2).mean()}


def make_synth(root: Path) -> Path:
    """A small `spvis synth` dataset (3 train videos of 6 frames, 64x64); returns train.json."""
    from spvis.data.synth import generate_synthetic_dataset

    info = generate_synthetic_dataset(root, videos=4, frames=6, size=64, categories=3, max_objects=2, seed=1)
    return Path(info["train_json"])


def tiny_cfg(train_json: Path, output_dir: Path, **solver: Any):
    """A config for the engine tests: 2-frame clips at 64 px, global batch 4 (2 clips per device)."""
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.DATASETS.TRAIN = [str(train_json)]
    cfg.INPUT.SAMPLING_FRAME_NUM = 2
    cfg.INPUT.MIN_SIZE_TRAIN = [64]
    cfg.INPUT.MAX_SIZE_TRAIN = 96
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.OUTPUT_DIR = str(output_dir)
    cfg.SOLVER.BASE_LR = 1e-2
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.SOLVER.CLIPS_PER_DEVICE = 2
    cfg.SOLVER.MAX_ITER = 4
    cfg.SOLVER.STEPS = [3]
    cfg.SOLVER.WARMUP_ITERS = 1
    cfg.SOLVER.CLIP_GRAD_NORM = 1.0
    cfg.SOLVER.CHECKPOINT_PERIOD = 2
    cfg.SOLVER.LOG_PERIOD = 1
    for key, value in solver.items():
        setattr(cfg.SOLVER, key, value)
    return cfg


def run_fake_training(cfg, *, resume: bool = False, sigterm_at_call: int | None = None, ctx=None):
    """Build data + TinyClipModel exactly as `spvis train` does and train; returns (trainer, result)."""
    from spvis.engine.launch import build_train_dataset
    from spvis.engine.distributed import init_distributed
    from spvis.engine.trainer import Trainer, setup_reproducibility

    ctx = ctx or init_distributed("cpu")
    setup_reproducibility(cfg)
    model = TinyClipModel(sigterm_at_call=sigterm_at_call)
    trainer = Trainer(cfg, model, build_train_dataset(cfg), ctx, resume=resume, log_stream=open(os.devnull, "w"))
    return trainer, trainer.train()


def ddp_worker(rank: int, world_size: int, port: int, train_json: str, output_dir: str) -> None:
    """One gloo rank of the 2-process test (module-level so `spawn` can import it)."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from spvis.engine.distributed import init_distributed, shutdown_distributed

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        run_fake_training(tiny_cfg(Path(train_json), Path(output_dir), CLIPS_PER_DEVICE=1), ctx=ctx)
    finally:
        shutdown_distributed()
