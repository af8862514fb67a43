"""The online model of an export folder: the package's pipeline around the exported graphs.

``load_exported_model(folder, backend)`` builds a ``GraphModel``: the same ``OnlineInferenceMixin`` as
``SPVISModel`` (preprocessing, association, emission), whose ``segment`` runs the segmenter graph, and an
``ExportedTracker``: ``ReferringTracker`` (alignment, PGT memory and lifecycle, state) whose network seam
``_network`` runs the tracker-step graph. Nothing else is replaced, so ``OnlineTracker``, post-processing and result
writing are the code the torch backend runs. The tracker's own weights are never needed and live on the meta device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from spvis.errors import SpvisError
from spvis.export.graphs import GRAPH_IO, SEGMENTER_IO, check_exportable
from spvis.export.manifest import read_manifest
from spvis.export.runners import RUNNERS
from spvis.modeling.inference import OnlineInferenceMixin
from spvis.modeling.preprocessing import Preprocessor
from spvis.modeling.tracker import ReferringTracker, TrackerState, build_tracker

# config keys an exported model still takes as overrides: inference settings, not architecture
OVERRIDABLE_PREFIX = "TEST."


class ExportedTracker(ReferringTracker):
    """ReferringTracker whose network (layers and heads) is an exported graph (``runner``); eval mode only."""

    runner = None  # a runners.OnnxRunner / TorchScriptRunner over the tracker_step graph

    def _network(self, identity: Tensor, reference: Tensor | None, cur: Tensor, mask_features: Tensor,
                 state: TrackerState | None) -> tuple[Tensor, Tensor, Tensor, Tensor, dict, None]:
        """The graph's outputs in ``ReferringTracker._network``'s layout (L' = 1); shapes as there."""
        if self.training:
            raise SpvisError("an exported tracker runs inference only (eval mode)")
        first = reference is None
        out, logits, masks, embeds = self.runner(identity, cur if first else reference, cur, mask_features.float(),
                                                 torch.tensor(first))
        return out, logits[None], masks[None], embeds.transpose(0, 1)[None], {}, None


class GraphModel(OnlineInferenceMixin, nn.Module):
    """Online inference (``init_state`` / ``track_frame``) with the segmenter and tracker as exported graphs."""

    def __init__(self, *, preprocessor: Preprocessor, segmenter, tracker: ExportedTracker | None,
                 input_size: tuple[int, int], source: str):
        super().__init__()
        self.preprocessor = preprocessor
        self.segmenter = segmenter  # runner: images (1, 3, Hp, Wp) -> SEGMENTER_IO outputs
        self.tracker = tracker
        self.refiner = None
        self.input_size = tuple(input_size)
        self.source = source

    @property
    def device(self) -> torch.device:
        """Where the pipeline's tensors live: the CPU (the graphs run on the CPU)."""
        return self.preprocessor.pixel_mean.device

    def segment(self, images: Tensor) -> dict:
        """images (1, 3, Hp, Wp) normalised, padded -> {pred_logits (1, Q, K+1), pred_masks (1, Q, h, w),
        pred_embds (1, Q, C), mask_features (1, Cm, h, w)}, as ``SPVISModel.segment`` gives them."""
        if tuple(images.shape[-2:]) != self.input_size or images.shape[0] != 1:
            raise SpvisError(f"{self.source}: the graphs take one {self.input_size[0]}x{self.input_size[1]} network "
                             f"input per frame; this video's frames make {images.shape[-2]}x{images.shape[-1]} "
                             f"(export again with --size set to this video's frame size)")
        return dict(zip(SEGMENTER_IO[1], self.segmenter(images.float())))


def check_overrides(overrides: Sequence[str]) -> None:
    """SpvisError for a KEY=VALUE override outside TEST.*: the graphs fix the architecture."""
    for item in overrides:
        key = item.partition("=")[0]
        if key == "MODEL.DEVICE":
            continue  # checked by the caller
        if not key.startswith(OVERRIDABLE_PREFIX):
            raise SpvisError(f"{key}: an exported model takes only {OVERRIDABLE_PREFIX}* overrides (its graphs fix "
                             f"the rest); export again with the changed config")


def load_exported_model(folder: str | Path, backend: str, overrides: Sequence[str] = ()) -> tuple[GraphModel, object]:
    """(GraphModel in eval mode, cfg) of the export folder ``folder`` for ``backend`` (onnx | torchscript);
    ``overrides``: TEST.* KEY=VALUE strings. Manifest problems are one-line errors naming the file and field."""
    from spvis.config import load_config

    if backend not in RUNNERS:
        raise SpvisError(f"--backend must be torch, onnx or torchscript, got {backend!r}")
    folder = Path(folder)
    manifest = read_manifest(folder, backend)
    device = [o for o in overrides if o.startswith("MODEL.DEVICE=")]
    if device and device[-1].partition("=")[2] not in ("cpu", "auto"):
        raise SpvisError(f"--backend {backend} runs on the CPU (onnxruntime's CPU provider / torch.jit on the CPU); "
                         f"leave out --device or pass --device cpu")
    check_overrides(overrides)
    cfg = load_config(folder / manifest["config"], [o for o in overrides if not o.startswith("MODEL.DEVICE=")])
    cfg.MODEL.DEVICE = "cpu"
    if str(cfg.TEST.HALF):
        raise SpvisError(f"--backend {backend}: the graphs run in float32; leave out --half (TEST.HALF)")
    check_exportable(cfg)
    graphs = manifest["graphs"]
    runner = RUNNERS[backend]
    segmenter = runner(folder / graphs["segmenter"]["file"], GRAPH_IO["segmenter"][0])
    tracker = None
    if cfg.MODEL.TRACKER.ENABLED:
        if "tracker_step" not in graphs:
            raise SpvisError(f"{folder / 'manifest.json'}: field 'graphs.tracker_step': missing, but the config "
                             f"enables MODEL.TRACKER")
        with torch.device("meta"):  # the structure and options only: the graph holds the weights
            tracker = build_tracker(cfg, ExportedTracker)
        tracker.runner = runner(folder / graphs["tracker_step"]["file"], GRAPH_IO["tracker_step"][0])
    model = GraphModel(preprocessor=Preprocessor.from_config(cfg), segmenter=segmenter, tracker=tracker,
                       input_size=tuple(manifest["input_size"]), source=str(folder))
    return model.eval(), cfg
