"""`spvis checkpoint verify`: run a model on a reference bundle and compare every tensor it holds.

A bundle (README.md, inputs.npz, outputs.npz, optional intermediates.npz, checkpoint.pth, config.yaml)
records official outputs for known inputs. Producers compute our versions: the segmenter here, the
tracker and the refiner in ``bundle_tracker`` / ``bundle_refiner`` (skipped, and reported, when the
model has no such module). Floats pass within ``atol + rtol * max|ref|`` (5e-5 + 1e-5 * max|ref|, i.e. ~1e-4 for O(1-10) values); integers must be equal;
binary masks may differ in a handful of pixels (logits within float noise of 0); result lists are
compared as sets keyed by (id, label), since their order is whatever the official top-k returned.
"""

from __future__ import annotations

import importlib
import inspect
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spvis.data.png_io import check_size
from spvis.errors import CheckpointError

MASK_PIXEL_TOLERANCE = 1e-4  # fraction of binary-mask pixels allowed to differ (README: ~50 pixels near 0)


@dataclass
class Row:
    """One compared tensor."""

    key: str
    shape: tuple
    max_abs: float
    max_rel: float
    tolerance: str
    passed: bool
    note: str = ""


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CheckpointError(f"{path}: bundle file missing")
    key = None
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {}
            for key in data.files:
                out[key] = data[key]
            return out
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # an object array (ValueError: it would need pickle, which is never allowed), a truncated or non-npz file
        where = f": array '{key}'" if key is not None else ""
        raise CheckpointError(f"{path}{where}: unreadable bundle array ({' '.join(str(exc).split())})") from None


def _compare_float(key: str, ref: np.ndarray, ours: np.ndarray, atol: float, rtol: float) -> Row:
    diff = np.abs(ref.astype(np.float64) - ours.astype(np.float64))
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    max_abs = float(diff.max()) if diff.size else 0.0
    limit = atol + rtol * scale
    return Row(key, ref.shape, max_abs, max_abs / scale if scale else max_abs, f"{limit:.1e}", max_abs <= limit)


def _compare_exact(key: str, ref: np.ndarray, ours: np.ndarray) -> Row:
    wrong = int((ref != ours).sum())
    return Row(key, ref.shape, float(np.abs(ref.astype(np.int64) - ours.astype(np.int64)).max(initial=0)), 0.0,
               "exact", wrong == 0, f"{wrong} differ" if wrong else "")


def _compare_mask(key: str, ref: np.ndarray, ours: np.ndarray) -> Row:
    wrong = int((ref.astype(bool) != ours.astype(bool)).sum())
    allowed = max(1, int(MASK_PIXEL_TOLERANCE * ref.size))
    return Row(key, ref.shape, float(wrong), wrong / ref.size, f"<= {allowed} px", wrong <= allowed,
               f"{wrong} pixels differ")


def _compare_results(prefix: str, ref: dict, ours: dict, atol: float, rtol: float) -> list[Row]:
    """final_<mode>_{scores,labels,ids,masks}: align our results to the reference by (id, label)."""
    ref_keys = list(zip(ref[f"{prefix}_ids"].tolist(), ref[f"{prefix}_labels"].tolist()))
    our_keys = list(zip(ours[f"{prefix}_ids"].tolist(), ours[f"{prefix}_labels"].tolist()))
    rows = []
    same_set = sorted(ref_keys) == sorted(our_keys)
    rows.append(Row(f"{prefix}_ids+labels", (len(ref_keys),), 0.0, 0.0, "same set", same_set,
                    "" if same_set else f"reference {sorted(ref_keys)} vs ours {sorted(our_keys)}"))
    if not same_set:
        return rows
    order = [our_keys.index(pair) for pair in ref_keys]
    rows.append(_compare_float(f"{prefix}_scores", ref[f"{prefix}_scores"], ours[f"{prefix}_scores"][order],
                               atol, rtol))
    rows.append(_compare_mask(f"{prefix}_masks", ref[f"{prefix}_masks"], ours[f"{prefix}_masks"][order]))
    return rows


def compare(reference: dict[str, np.ndarray], produced: dict[str, np.ndarray], *, atol: float = 5e-5,
            rtol: float = 1e-5) -> list[Row]:
    """One Row per reference tensor that a producer made (result lists grouped per mode)."""
    rows: list[Row] = []
    done: set[str] = set()
    for key in reference:
        if key in done or key not in produced:
            continue
        if key.startswith("final_") and key.endswith(("_scores", "_labels", "_ids", "_masks")):
            prefix = key.rsplit("_", 1)[0]
            group = [f"{prefix}_{part}" for part in ("scores", "labels", "ids", "masks")]
            if all(name in produced and name in reference for name in group):
                rows.extend(_compare_results(prefix, reference, produced, atol, rtol))
                done.update(group)
                continue
        ref, ours = reference[key], np.asarray(produced[key])
        done.add(key)
        if ref.shape != ours.shape:
            rows.append(Row(key, ref.shape, float("nan"), float("nan"), "shape", False, f"ours {ours.shape}"))
        elif np.issubdtype(ref.dtype, np.floating):
            rows.append(_compare_float(key, ref, ours, atol, rtol))
        elif ref.dtype == np.uint8:
            rows.append(_compare_mask(key, ref, ours))
        else:
            rows.append(_compare_exact(key, ref, ours))
    return rows


def _call_producer(module_name: str, model, frames: np.ndarray, produced: dict, options: dict) -> dict | None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    accepted = inspect.signature(module.produce).parameters
    kwargs = {name: value for name, value in options.items() if name in accepted}
    return module.produce(model, frames, produced, **kwargs)


def run_bundle(bundle_dir: str | Path, *, weights: str | Path | None = None, atol: float = 5e-5,
               rtol: float = 1e-5) -> tuple[list[Row], list[str]]:
    """Rows for every comparable tensor of the bundle, plus notes on what was skipped."""
    import torch

    bundle = Path(bundle_dir)
    if not bundle.is_dir():
        raise CheckpointError(f"{bundle}: bundle directory not found")
    if weights is None:
        from spvis.checkpoints.importer import build_official_model

        model, cfg = build_official_model(bundle / "checkpoint.pth", bundle / "config.yaml", "dvis")
    else:
        from spvis.checkpoints.io import load_weights
        from spvis.checkpoints.loading import load_state_strict
        from spvis.modeling.meta_arch import SPVISModel

        state, cfg = load_weights(weights)
        model = SPVISModel.from_config(cfg)
        load_state_strict(model, state, source=str(weights))
    model.eval()
    frames = _load_npz(bundle / "inputs.npz").get("frames")
    if frames is None:
        raise CheckpointError(f"{bundle / 'inputs.npz'}: no 'frames' array")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
        raise CheckpointError(f"{bundle / 'inputs.npz'}: array 'frames' must be uint8 (T, H, W, 3) RGB, got "
                              f"{frames.dtype} {tuple(frames.shape)}")
    check_size(bundle / "inputs.npz", int(frames.shape[1]), int(frames.shape[2]), field="frames")
    reference = _load_npz(bundle / "outputs.npz")
    intermediates = bundle / "intermediates.npz"
    if intermediates.is_file():
        reference.update(_load_npz(intermediates))
    options = {"max_num": cfg.TEST.MAX_NUM, "size_divisibility": cfg.MODEL.SIZE_DIVISIBILITY,
               "window_size": cfg.TEST.WINDOW_SIZE}
    notes = []
    with torch.no_grad():
        produced = dict(_call_producer("spvis.checkpoints.bundle_segmenter", model, frames, {}, options))
        for part, attribute in (("tracker", "tracker"), ("refiner", "refiner")):
            if getattr(model, attribute, None) is None:
                notes.append(f"{part}: model has no {attribute}; its tensors were not compared")
                continue
            result = _call_producer(f"spvis.checkpoints.bundle_{part}", model, frames, produced, options)
            if result is None:
                notes.append(f"{part}: spvis.checkpoints.bundle_{part} is not available; its tensors were not compared")
                continue
            produced.update(result)
    rows = compare(reference, produced, atol=atol, rtol=rtol)
    missing = sorted(set(reference) - set(produced) - {r.key for r in rows})
    if missing:
        notes.append(f"not produced: {', '.join(missing)}")
    return rows, notes


def format_table(rows: list[Row]) -> str:
    """Plain-text table: key, shape, max abs, max rel, tolerance, pass."""
    lines = [f"{'key':34s} {'shape':>20s} {'max abs':>10s} {'max rel':>10s} {'tolerance':>12s}  pass"]
    for row in rows:
        lines.append(f"{row.key:34s} {str(tuple(row.shape)):>20s} {row.max_abs:10.3g} {row.max_rel:10.3g} "
                     f"{row.tolerance:>12s}  {'ok' if row.passed else 'FAIL'} {row.note}".rstrip())
    return "\n".join(lines)
