"""`spvis checkpoint import`: official Mask2Former / DVIS / DVIS++ weights -> our safetensors + config."""

from __future__ import annotations

from pathlib import Path

from spvis.checkpoints.io import is_model_folder, require_finite, save_weights
from spvis.checkpoints.keymaps import MODEL_PREFIXES, official_to_ours
from spvis.checkpoints.loading import load_state_strict
from spvis.checkpoints.official_config import official_to_cfg
from spvis.checkpoints.unpickler import read_state_dict
from spvis.errors import CheckpointError

FORMATS = ("mask2former", "dvis", "dvis++")


def build_official_model(src: str | Path, official_config: str | Path, fmt: str):
    """(model with the official weights loaded, our cfg) — every key disagreement raises, named."""
    from spvis.modeling.meta_arch import build_model

    if fmt not in FORMATS:
        raise CheckpointError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    cfg = official_to_cfg(official_config, fmt=fmt)
    state = read_state_dict(src)
    require_finite(state, src)  # NaN/inf weights would be written out and refused only when used (fuzz suite)
    state, _dropped = official_to_ours(state, backbone=cfg.MODEL.BACKBONE.NAME)
    foreign = sorted(key for key in state if not key.startswith(MODEL_PREFIXES))
    if foreign:
        raise CheckpointError(f"{src}: keys outside the model ({len(foreign)}): {', '.join(foreign[:10])}")
    model = build_model(cfg, str(official_config))
    load_state_strict(model, state, source=f"{src} with {official_config}")
    return model, cfg


def import_official(src: str | Path, *, fmt: str, official_config: str | Path, out: str | Path) -> Path:
    """Convert and write ``out``: a .safetensors file (+ .yaml), or a model folder (model.safetensors,
    config.yaml, MODEL_CARD.md) that ``--weights`` / ``spvis.load`` accept as it is. Returns the weights file."""
    model, cfg = build_official_model(src, official_config, fmt)
    if is_model_folder(out):
        from spvis.checkpoints.model_card import write_model_card

        weights = save_weights(out, model, cfg)
        write_model_card(out, cfg, recipe=f"imported from the official {fmt} checkpoint {Path(src).name} "
                                          f"({Path(official_config).name})")
        return weights
    return save_weights(out, model, cfg)
