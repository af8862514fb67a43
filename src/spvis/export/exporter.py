"""``export_model``: write the segmenter and tracker-step graphs of a model, checked against eager first.

Each graph is exported into a temporary folder, loaded back with the runtime that will run it (onnxruntime or
torch.jit) and compared with the eager model on a random input and on real frames (procedural ``spvis synth``
frames unless the caller gives a video); only when every output is within the tolerance are the graphs, the config
and, last, ``manifest.json`` written into the output folder, each atomically. Nothing is written on failure.

The deformable attention's default fused ``embedding_bag`` core exports through torch.export, but onnxruntime runs
its EmbeddingBag decomposition about 8x slower than eager (and the TorchScript-based ONNX exporter makes a graph
with float64 parts that onnxruntime refuses to load); ONNX graphs therefore use the per-level ``grid_sample`` core
(ONNX GridSample, same result within float rounding), TorchScript graphs keep the fused kernel.
``benchmarks/export_speed.py`` measures both (docs/RESULTS.md, "Export (ONNX / TorchScript)").
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from spvis.errors import SpvisError
from spvis.export.graphs import GRAPH_IO, SegmenterGraph, TrackerStepGraph, attention_core, check_exportable
from spvis.export.manifest import (CONFIG_NAME, FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, graph_file_names)
from spvis.export.runners import RUNNERS, require_onnx

DEFAULT_TOLERANCE = 1e-3  # max abs difference allowed between a graph's outputs and eager's, on every output
DEFAULT_OPSET = 18
ATTENTION_CORE = {"onnx": "grid_sample", "torchscript": "fused"}


@dataclass
class ExportReport:
    """What ``export_model`` wrote and measured."""

    out_dir: Path
    files: list[Path]
    input_size: tuple[int, int]
    max_abs_diff: dict[str, dict[str, float]] = field(default_factory=dict)  # graph -> {random, real} -> diff


def planned_files(backend: str, with_tracker: bool) -> list[str]:
    """The file names an export writes into its folder (graphs, config, manifest)."""
    return [*graph_file_names(backend, with_tracker).values(), CONFIG_NAME, MANIFEST_NAME]


def check_export_output(out_dir: Path, backend: str, with_tracker: bool, overwrite: bool) -> None:
    """SpvisError when ``out_dir`` already holds a file this export writes and ``overwrite`` is off."""
    present = [name for name in planned_files(backend, with_tracker) if (out_dir / name).exists()]
    if present and not overwrite:
        raise SpvisError(f"--out {out_dir} already holds {', '.join(present)}; pass --overwrite to replace them "
                         f"(other files stay)")


def network_input_size(model: nn.Module, frame_size: tuple[int, int]) -> tuple[int, int]:
    """(Hp, Wp) the preprocessor makes of a frame of ``frame_size``: the fixed input size of the graphs."""
    frame = np.zeros((*frame_size, 3), dtype=np.uint8)
    return tuple(int(v) for v in model.preprocessor(frame).images.shape[-2:])


def _spec(name: str, tensor: Tensor) -> dict[str, Any]:
    return {"name": name, "shape": list(tensor.shape), "dtype": str(tensor.dtype).replace("torch.", "")}


def _export_graph(graph: nn.Module, inputs: tuple[Tensor, ...], names: tuple[tuple[str, ...], tuple[str, ...]],
                  path: Path, backend: str, opset: int) -> None:
    """Write ``graph`` traced on ``inputs`` to ``path`` (ONNX through torch.export, or TorchScript)."""
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_loggers():
        warnings.simplefilter("ignore")  # tracer and exporter chatter; the check below is what counts
        if backend == "torchscript":
            torch.jit.save(torch.jit.trace(graph, inputs, check_trace=False), str(path))
            return
        program = torch.onnx.export(graph, inputs, None, dynamo=True, opset_version=opset, input_names=list(names[0]),
                                    output_names=list(names[1]), optimize=True, verbose=False)
        program.save(str(path))


@contextlib.contextmanager
def _quiet_loggers():
    """The exporter's and optimiser's log lines (one per skipped constant fold) held back inside the block."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _max_diff(expected: Sequence[Tensor], got: Sequence[Tensor]) -> float:
    return max(float((e.float() - g.float()).abs().max()) for e, g in zip(expected, got))


def _real_frames(frame_size: tuple[int, int], check_input: str | None, work: Path) -> list[np.ndarray]:
    """Two uint8 (H, W, 3) frames: the first two of ``check_input`` (a video or frame folder), else of a fresh
    procedural ``spvis synth`` video of ``frame_size``."""
    from spvis.data import open_frame_source

    if check_input is None:
        from spvis.data.synth import generate_synthetic_dataset

        info = generate_synthetic_dataset(work / "synth", videos=1, frames=2, size=frame_size, categories=6,
                                          valid_fraction=0.0, seed=7)
        check_input = str(next(Path(info["train_image_root"]).iterdir()))
    if not Path(check_input).exists():
        raise SpvisError(f"{check_input}: no such video file or frame folder (--check-input)")
    frames = []
    for frame in open_frame_source(Path(check_input), max_frames=2):
        frames.append(frame)
    if len(frames) < 2:
        raise SpvisError(f"{check_input}: the check needs two frames, it has {len(frames)} (--check-input)")
    return frames


def _segmenter_cases(model: nn.Module, frames: list[np.ndarray], size: tuple[int, int]) -> dict[str, tuple]:
    generator = torch.Generator().manual_seed(0)
    real = model.preprocessor(frames[0]).images.float()
    if tuple(real.shape[-2:]) != size:
        raise SpvisError(f"--check-input frames become {real.shape[-2]}x{real.shape[-1]} network inputs, the export "
                         f"takes {size[0]}x{size[1]}: give --size the check video's frame size")
    return {"random": (torch.randn(1, 3, *size, generator=generator),), "real": (real,)}


def _tracker_cases(model: nn.Module, frames: list[np.ndarray]) -> dict[str, tuple]:
    """Graph inputs: random tensors (a later frame), and the real frames' first and second frame."""
    from spvis.modeling.pgt.matching import gather_slots, match_batch

    tracker = model.tracker
    seg = [model.segment(model.preprocessor(frame).images) for frame in frames[:2]]
    cur0, cur1 = (s["pred_embds"].transpose(0, 1) for s in seg)  # (Q, 1, C)
    _, state = tracker.step(seg[0]["pred_embds"], seg[0]["mask_features"], None)
    indices = match_batch(state.last_aligned, cur1, tracker.alignment)
    generator = torch.Generator().manual_seed(1)
    rand = [torch.randn(cur0.shape, generator=generator) for _ in range(3)]
    features = torch.randn(seg[0]["mask_features"].shape, generator=generator)
    return {
        "random": (*rand, features, torch.tensor(False)),
        "real_first": (cur0, cur0, cur0, seg[0]["mask_features"], torch.tensor(True)),
        "real": (gather_slots(cur1, indices), state.last_output, cur1, seg[1]["mask_features"], torch.tensor(False)),
    }


def _eager_tracker(tracker: nn.Module) -> Callable[..., tuple[Tensor, ...]]:
    """Eager ``ReferringTracker._network`` with the graph's inputs and outputs."""
    def run(identity, reference, memory, mask_features, first):
        out, logits, masks, normed, _, _ = tracker._network(identity, None if bool(first) else reference, memory,
                                                            mask_features, None)
        return out, logits[-1], masks[-1], normed[-1].transpose(0, 1)
    return run


def export_model(model: nn.Module, cfg, out_dir: str | Path, *, backend: str = "onnx", opset: int = DEFAULT_OPSET,
                 frame_size: tuple[int, int], tolerance: float = DEFAULT_TOLERANCE, overwrite: bool = False,
                 check_input: str | None = None, source: str = "") -> ExportReport:
    """Export the eval-mode CPU ``model`` (an SPVISModel) for frames of ``frame_size`` (H, W) into ``out_dir``.

    ``backend``: onnx | torchscript; ``tolerance``: the largest abs difference to eager allowed on any output;
    ``source``: the weights it came from (recorded). Returns the files written and the measured differences."""
    from spvis import __version__
    from spvis.engine.infer_settings import sha256_of
    from spvis.utils.atomic_io import atomic_save, atomic_write_json, atomic_write_text

    if backend not in RUNNERS:
        raise SpvisError(f"--format must be onnx or torchscript, got {backend!r}")
    if backend == "onnx":
        require_onnx()
    check_exportable(cfg)
    out_dir = Path(out_dir)
    with_tracker = getattr(model, "tracker", None) is not None
    check_export_output(out_dir, backend, with_tracker, overwrite)
    model = model.eval()
    size = network_input_size(model, frame_size)
    names = graph_file_names(backend, with_tracker)
    report = ExportReport(out_dir, [], size)
    graphs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="spvis-export-") as tmp, torch.no_grad():
        work = Path(tmp)
        frames = _real_frames(frame_size, check_input, work)
        # (name, graph module, its check inputs, eager with the graph's inputs and outputs)
        jobs = [("segmenter", SegmenterGraph(model), _segmenter_cases(model, frames, size), SegmenterGraph(model))]
        if with_tracker:
            jobs.append(("tracker_step", TrackerStepGraph(model.tracker), _tracker_cases(model, frames),
                         _eager_tracker(model.tracker)))
        for name, graph, cases, eager in jobs:
            inputs = cases["random"]
            with attention_core(model, ATTENTION_CORE[backend]):
                _export_graph(graph, inputs, GRAPH_IO[name], work / names[name], backend, opset)
            runner = RUNNERS[backend](work / names[name], GRAPH_IO[name][0])
            diffs = {}
            for case, case_inputs in cases.items():
                # eager as inference runs it (the default attention core) against the graph
                diffs[case] = _max_diff(eager(*case_inputs), runner(*case_inputs))
            report.max_abs_diff[name] = diffs
            worst = max(diffs, key=diffs.get)
            if not diffs[worst] <= tolerance:
                raise SpvisError(f"the exported {name} graph differs from the eager model by {diffs[worst]:.3g} on the "
                                 f"{worst} input (tolerance {tolerance:g}); nothing was written")
            graphs[name] = {
                "file": names[name], "sha256": sha256_of(work / names[name]),
                "inputs": [_spec(n, t) for n, t in zip(GRAPH_IO[name][0], inputs)],
                "outputs": [_spec(n, t) for n, t in zip(GRAPH_IO[name][1], runner(*inputs))],
            }
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, file in names.items():
            atomic_save(out_dir / file, lambda tmp_name, src=work / file: shutil.copyfile(src, tmp_name))
            report.files.append(out_dir / file)
    atomic_write_text(out_dir / CONFIG_NAME, cfg.dump())
    report.files.append(out_dir / CONFIG_NAME)
    runtime = {"onnx": "onnxruntime", "torchscript": "torch.jit"}[backend]
    manifest = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "backend": backend,
        "opset": opset if backend == "onnx" else None,
        "spvis_version": __version__, "torch_version": torch.__version__,
        "source_weights": source, "source_sha256": sha256_of(source) if source and Path(source).is_file() else None,
        "config": CONFIG_NAME, "frame_size": list(frame_size), "input_size": list(size),
        "deform_attn_core": ATTENTION_CORE[backend],
        "graphs": graphs,
        "check": {"runtime": f"{runtime} {_runtime_version(backend)}", "tolerance": tolerance,
                  "max_abs_diff": report.max_abs_diff,
                  "inputs": "random: seeded normal tensors; real: the first two frames of "
                            + (check_input or "a procedural spvis synth video")},
    }
    atomic_write_json(out_dir / MANIFEST_NAME, manifest, indent=1)
    report.files.append(out_dir / MANIFEST_NAME)
    return report


def _runtime_version(backend: str) -> str:
    if backend == "onnx":
        import onnxruntime

        return onnxruntime.__version__
    return torch.__version__
