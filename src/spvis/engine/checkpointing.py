"""A run's training checkpoints (which to keep, which to resume from) and stage weights (initialise a model).

A training checkpoint holds model, optimizer, scheduler, grad scaler, iteration, RNG states and the config as
YAML; the file itself is read and written by ``spvis.checkpoints.io`` (never unpickled). It is written
atomically and only then named in ``OUTPUT_DIR/last_checkpoint``, so a run killed at any moment (or a full
disk) leaves the previous complete checkpoint in place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

# inference_state, load_training_checkpoint, save_weights and unwrap are also read through this module (trainer)
from spvis.checkpoints.io import (inference_state, load_training_checkpoint, read_weights, save_weights,
                                  training_config, unwrap, write_training_checkpoint)
from spvis.checkpoints.loading import load_state_strict
from spvis.errors import CheckpointError
from spvis.utils.atomic_io import atomic_write_text


LAST_CHECKPOINT_FILE = "last_checkpoint"
FINAL_WEIGHTS_NAME = "model_final.safetensors"
CHECKPOINT_FORMAT_VERSION = 1
_CHECKPOINT_RE = re.compile(r"^model_(\d{7})\.pth$")
# Modules each stage adds: a stage may start from weights that lack them (stage chaining).
STAGE_NEW_MODULES = {"segmenter": ("tracker.", "refiner."), "tracker": ("tracker.", "refiner."),
                     "refiner": ("refiner.",)}


def checkpoint_name(iteration: int) -> str:
    return f"model_{iteration:07d}.pth"


def save_training_checkpoint(output_dir: str | Path, state: dict[str, Any], *, iteration: int) -> Path:
    """Write ``model_<iter>.pth`` atomically, then point ``last_checkpoint`` at it; returns the path."""
    out = Path(output_dir)
    path = out / checkpoint_name(iteration)
    write_training_checkpoint(path, dict(state, iteration=int(iteration), format_version=CHECKPOINT_FORMAT_VERSION))
    atomic_write_text(out / LAST_CHECKPOINT_FILE, path.name + "\n")
    return path


def prune_checkpoints(output_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``model_<iter>.pth`` (never the one ``last_checkpoint`` names)."""
    if keep <= 0:
        return []
    out = Path(output_dir)
    last = find_last_checkpoint(out)
    candidates = sorted(p for p in out.glob("model_*.pth") if _CHECKPOINT_RE.match(p.name))
    removed = [p for p in candidates[:-keep] if p != last]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def find_last_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint named by ``last_checkpoint``; else the highest-numbered ``model_*.pth``; else None."""
    out = Path(output_dir)
    pointer = out / LAST_CHECKPOINT_FILE
    if pointer.is_file():
        named = out / pointer.read_text(encoding="utf-8").strip()
        if named.is_file():
            return named
    candidates = sorted(p for p in out.glob("model_*.pth") if _CHECKPOINT_RE.match(p.name))
    return candidates[-1] if candidates else None


def checkpoints_newest_first(output_dir: str | Path) -> list[Path]:
    """The checkpoint ``last_checkpoint`` names, then every other ``model_<iter>.pth`` from the highest down."""
    out = Path(output_dir)
    last = find_last_checkpoint(out)
    numbered = sorted((p for p in out.glob("model_*.pth") if _CHECKPOINT_RE.match(p.name)), reverse=True)
    return ([last] if last is not None else []) + [p for p in numbered if p != last]


def load_newest_valid_checkpoint(output_dir: str | Path,
                                 on_skip: Callable[[Path, CheckpointError], None] | None = None
                                 ) -> tuple[Path, dict[str, Any]] | None:
    """(path, data) of the newest checkpoint in ``output_dir`` that loads, else None when there is none.

    A truncated or corrupt newer checkpoint (a copy cut short, a damaged disk) is passed to ``on_skip`` and the
    one before it is tried, so ``--resume`` loses a period of training instead of the run. When checkpoints
    exist but none loads, the newest one's CheckpointError is raised.
    """
    first_error: CheckpointError | None = None
    for path in checkpoints_newest_first(output_dir):
        try:
            return path, load_training_checkpoint(path)
        except CheckpointError as exc:
            first_error = first_error or exc
            if on_skip is not None:
                on_skip(path, exc)
    if first_error is not None:
        raise CheckpointError(f"{first_error} (no older checkpoint in {output_dir} loads either)") from None
    return None


def export_training_checkpoint(src: str | Path, out: str | Path) -> Path:
    """Inference weights (safetensors + config YAML, or a model folder) from a training checkpoint ``.pth``.

    The model is rebuilt from the checkpoint's own config and loaded strictly, so a checkpoint whose
    weights do not fit its config is refused rather than exported.
    """
    from spvis.modeling.meta_arch import SPVISModel

    data = load_training_checkpoint(src)
    cfg = training_config(data, src)
    model = SPVISModel.from_config(cfg)
    load_state_strict(model, inference_state(data), source=str(src))
    return save_weights(out, model, cfg)


def load_initial_weights(model: nn.Module, path: str | Path, *, stage: str) -> list[str]:
    """Initialise ``model`` for ``stage`` from MODEL.WEIGHTS (the previous stage's output); returns missing keys.

    Only the modules the stage adds may be missing; weights stored by a *later* stage (e.g. a refiner
    checkpoint given to the segmenter stage) load too, since they contain every earlier module.
    """
    state, stored_cfg = read_weights(path)
    stored_stage = stored_cfg.STAGE if stored_cfg is not None else None
    own_keys = set(model.state_dict())
    # A later stage's weights hold modules this model may not build (e.g. refiner weights -> tracker stage).
    extra_prefixes = tuple(p for p in ("tracker.", "refiner.") if not any(k.startswith(p) for k in own_keys))
    state = {k: v for k, v in state.items() if not k.startswith(extra_prefixes)} if extra_prefixes else state
    try:
        missing = load_state_strict(model, state, source=str(path), allow_missing_prefixes=STAGE_NEW_MODULES[stage])
    except CheckpointError as exc:
        if stored_stage:
            raise CheckpointError(f"{exc} (the weights come from stage {stored_stage!r}, this run is stage "
                                  f"{stage!r})") from None
        raise
    inherit_heads(model, missing)
    return missing


# Heads a new stage takes over from the stage before it: (new module, previous module).
HEAD_NAMES = ("decoder_norm", "class_embed", "mask_embed")
HEAD_SOURCES = (("tracker", "sem_seg_head.predictor"), ("refiner", "tracker"))


def inherit_heads(model: nn.Module, missing: list[str]) -> list[str]:
    """Start a fresh tracker / refiner as a copy of the stage before it: heads copied, residual branches zero.

    The tracker reads the segmenter's queries and the refiner the tracker's, so their heads face the same
    embedding space. The new stage's ``decoder_norm`` / ``class_embed`` / ``mask_embed`` are copied from the
    previous stage, and the last projection of every residual branch (attention ``out_proj``, FFN ``linear2``,
    the refiner's second temporal conv) starts at zero, so every post-norm layer starts as a LayerNorm of its
    input. A fresh tracker then predicts what MinVIS association of the segmenter predicts (measured on the
    synthetic benchmark: AP 51.6 / IDF1 80.5 against MinVIS's 51.7 / 79.1, where random layers gave 27.7), and a
    fresh refiner what the tracker predicts; training starts from the input stage's accuracy instead of from
    noise (random heads cost the tracker half of the segmenter's AP in 100 iterations). The branches still
    learn: the zero projections get gradients from the first step. Only modules whose keys were all missing
    from the loaded weights are touched, heads only when shapes agree (a DVIS++ tracker's 2C heads keep their
    init). Returns the copied and zeroed parameter names.
    """
    missing_set = set(missing)
    touched = []
    for target_name, source_name in HEAD_SOURCES:
        target, source = _submodule(model, target_name), _submodule(model, source_name)
        if target is None or not all(f"{target_name}.{k}" in missing_set for k in target.state_dict()):
            continue  # no such stage, or it was loaded from the weights: keep it as it is
        if source is not None:
            for head in HEAD_NAMES:
                dst, src = getattr(target, head, None), getattr(source, head, None)
                if dst is None or src is None:
                    continue
                src_state = src.state_dict()
                if {k: tuple(v.shape) for k, v in src_state.items()} != \
                        {k: tuple(v.shape) for k, v in dst.state_dict().items()}:
                    continue
                dst.load_state_dict(src_state)
                touched.extend(f"{target_name}.{head}.{k}" for k in src_state)
        touched.extend(f"{target_name}.{name}" for name in zero_residual_branches(target))
    return touched


@torch.no_grad()
def zero_residual_branches(module: nn.Module) -> list[str]:
    """Zero the output projection of every residual branch of a tracker / refiner's DVIS layers (the
    ``transformer_*_layers`` and ``conv_short_aggregate_layers`` lists; SIM and RCP keep their own gated
    near-identity init, whose gates would get no gradient behind a zero branch). Returns the names zeroed."""
    zeroed = []
    for name, child in module.named_modules():
        if not name.startswith(("transformer_", "conv_short_aggregate_layers.")):
            continue
        if isinstance(child, nn.MultiheadAttention):
            parts = [("out_proj.weight", child.out_proj.weight), ("out_proj.bias", child.out_proj.bias)]
        elif hasattr(child, "linear2") and isinstance(child.linear2, nn.Linear):  # FFNLayer
            parts = [("linear2.weight", child.linear2.weight), ("linear2.bias", child.linear2.bias)]
        elif name.startswith("conv_short_aggregate_layers.") and name.count(".") == 1:  # refiner conv branch
            last = child[-1]
            parts = [("2.weight", last.weight), ("2.bias", last.bias)]
        else:
            continue
        for suffix, tensor in parts:
            if tensor is not None:
                tensor.zero_()
                zeroed.append(f"{name}.{suffix}")
    return zeroed


def _submodule(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:  # the model does not build this part (e.g. no refiner)
        return None
