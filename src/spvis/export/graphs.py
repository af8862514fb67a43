"""The modules that are exported: the per-frame segmenter and the learned tracker's network step, with fixed inputs.

Each graph takes and returns plain tensors in a fixed order (``SEGMENTER_IO`` / ``TRACKER_IO``), so the runtime can
feed them from the online pipeline and turn their outputs back into the dicts the eager model returns.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

from spvis.errors import SpvisError
from spvis.modeling.ms_deform_attn import MSDeformAttn

# (inputs, outputs) of each graph, in call order
SEGMENTER_IO = (("images",), ("pred_logits", "pred_masks", "pred_embds", "mask_features"))
TRACKER_IO = (("identity", "reference", "memory", "mask_features", "first"),
              ("output", "pred_logits", "pred_masks", "pred_embds"))
GRAPH_IO = {"segmenter": SEGMENTER_IO, "tracker_step": TRACKER_IO}

# Tracker switches whose network parts the tracker graph leaves out (refused at export, named by key).
UNSUPPORTED_TRACKER_KEYS = ("MODEL.TRACKER.SIM", "MODEL.TRACKER.RCP", "MODEL.TRACKER.PGT.PROGRESSIVE_REF")


class SegmenterGraph(nn.Module):
    """images (1, 3, Hp, Wp) normalised and padded -> pred_logits (1, Q, K+1), pred_masks (1, Q, h, w),
    pred_embds (1, Q, C), mask_features (1, Cm, h, w): what the online path reads of ``SPVISModel.segment``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.model.segment(images)
        return out["pred_logits"], out["pred_masks"], out["pred_embds"], out["mask_features"]


class TrackerStepGraph(nn.Module):
    """The learned tracker's network for one frame (``ReferringTracker._network`` in eval mode, no SIM / RCP).

    identity (Q, 1, C): this frame's queries in slot order; reference (Q, 1, C): the previous frame's output
    (ignored when ``first``); memory (Q, 1, C): this frame's queries; mask_features (1, Cm, h, w); first: bool ()
    True on a video's first frame, where every layer refers to the previous layer's output. Returns output
    (Q, 1, C) (the next frame's reference), pred_logits (1, Q, K+1), pred_masks (1, Q, h, w), pred_embds (1, Q, C).
    """

    def __init__(self, tracker: nn.Module):
        super().__init__()
        self.tracker = tracker

    def forward(self, identity: Tensor, reference: Tensor, memory: Tensor, mask_features: Tensor,
                first: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = identity
        for j in range(self.tracker.num_layers):
            # torch.where picks exactly one operand: on the first frame the result is bit-equal to eager's `out`
            out = self.tracker._layer(j, out, torch.where(first, out, reference), memory)
        logits, masks, normed = self.tracker._heads(out.unsqueeze(0), mask_features)  # L' = 1
        return out, logits[0], masks[0], normed[0].transpose(0, 1)


def check_exportable(cfg) -> None:
    """SpvisError naming the key when the config has parts the graphs do not cover."""
    tracker = cfg.MODEL.TRACKER
    values = {"MODEL.TRACKER.SIM": tracker.SIM, "MODEL.TRACKER.RCP": tracker.RCP,
              "MODEL.TRACKER.PGT.PROGRESSIVE_REF": tracker.PGT.PROGRESSIVE_REF}
    if not tracker.ENABLED:
        return
    for key in UNSUPPORTED_TRACKER_KEYS:
        if values[key]:
            raise SpvisError(f"{key} is on: the exported tracker step covers the DVIS tracker layers and heads (with "
                             f"PGT memory, clip association and lifecycle, which run outside the graph), not this "
                             f"part; export a model with {key}: false")


@contextlib.contextmanager
def attention_core(model: nn.Module, core: str) -> Iterator[None]:
    """Run every MSDeformAttn of ``model`` on ``core`` inside the block: ``grid_sample`` (the per-level official
    algorithm, exported as ONNX GridSample) or ``fused`` (the default embedding_bag kernel)."""
    if core not in ("grid_sample", "fused"):
        raise ValueError(f"unknown deformable-attention core {core!r}")
    modules = [m for m in model.modules() if isinstance(m, MSDeformAttn)]
    before = [m.use_reference_core for m in modules]
    for module in modules:
        module.use_reference_core = core == "grid_sample"
    try:
        yield
    finally:
        for module, value in zip(modules, before):
            module.use_reference_core = value
