"""``OUT/results.settings.json``: the settings that decide an ``spvis infer`` run's results, kept beside its log.

``--resume`` appends to ``results.jsonl`` and writes ``results.json`` from every logged video, so a resume with
other settings would silently merge two different runs in one file. The settings are recorded when a run starts
and a resume with different ones is refused, naming the first setting that differs.

Recorded (each changes the entries of a video):

* ``mode`` (online / offline), ``score_thr``, ``max_frames``;
* ``weights``: the sha256 of the weights file (a moved copy resumes, retrained weights at the same path do not);
* ``input`` / ``image_root``: resolved paths, and for an input file its size and mtime (a video is not hashed:
  it can be gigabytes);
* ``device``: the device type (cpu / cuda): float reductions differ between them in the last digits;
* ``config.<KEY>``: every key of the effective config (the weights' config or --config, the KEY=VALUE overrides,
  --tracker as TEST.TRACKER, --half as TEST.HALF) except those that do not touch inference: ``IGNORED_KEYS``.

Not recorded, on purpose: ``--no-overlay`` (overlays only), ``--max-memory-gb`` and ``--window-size`` (the offline
engine gives identical masks for every budget and window), ``--allow-truncated`` (decides only whether a broken
video is an error; a video that finished was whole either way), ``--device cuda:0`` vs ``cuda:1``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from spvis.errors import DataFormatError, SpvisError
from spvis.utils.atomic_io import atomic_write_json
from spvis.utils.nested import flatten_dict

SETTINGS_NAME = "results.settings.json"
# results of another command that mark an infer --out as used; infer never removes them (not even --exist-ok)
FOREIGN_RESULTS = ("metrics.json",)
FORMAT_VERSION = 1
# Config keys (and key prefixes, ending in '.') that never change an inference result.
IGNORED_KEYS = ("OUTPUT_DIR", "SOLVER.", "DATALOADER.", "DATASETS.", "SEED", "MODEL.WEIGHTS", "MODEL.DEVICE",
                "MODEL.BACKBONE.PRETRAINED", "MODEL.FROZEN_CACHE_DIR")


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _ignored(key: str) -> bool:
    return any(key.startswith(k) if k.endswith(".") else key == k for k in IGNORED_KEYS)


def config_settings(cfg: Any) -> dict[str, Any]:
    """``{"config.<KEY>": value}`` of every result-changing key of ``cfg`` (a CfgNode), as YAML reads it back."""
    import yaml

    flat = flatten_dict(yaml.safe_load(cfg.dump()) or {})
    return {f"config.{key}": value for key, value in sorted(flat.items()) if not _ignored(key)}


def _weights_identity(path: str | Path) -> str:
    path = Path(path)
    return f"sha256:{sha256_of(path)}" if path.is_file() else str(path.resolve())


def _input_identity(path: str | Path) -> dict[str, Any]:
    from spvis.data.live import is_live

    if is_live(path):  # a URL or webcam: its name is all there is
        return {"input": str(path)}
    path = Path(path).resolve()
    if path.is_file():
        stat = path.stat()
        return {"input": str(path), "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns}
    return {"input": str(path)}


def result_settings(*, input_path: str | Path, image_root: str | Path | None, weights_file: str | Path, mode: str,
                    score_thr: float, max_frames: int | None, device_type: str, cfg: Any) -> dict[str, Any]:
    """The settings record of one run (see the module docstring); flat, json-ready, keys in a fixed order."""
    return {"format_version": FORMAT_VERSION, "mode": mode, "score_thr": float(score_thr), "max_frames": max_frames,
            "weights": _weights_identity(weights_file), **_input_identity(input_path),
            "image_root": str(Path(image_root).resolve()) if image_root is not None else None,
            "device": device_type, **config_settings(cfg)}


def read_settings(path: str | Path) -> dict[str, Any] | None:
    """The recorded settings, None when there are none; DataFormatError when the file is damaged."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise DataFormatError(path, f"not readable JSON ({exc}); rerun with --exist-ok to start over") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, "must be a JSON object of settings; rerun with --exist-ok to start over")
    return data


def first_difference(recorded: dict[str, Any], current: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """(setting, recorded value, current value) of the first setting that differs, else None."""
    for key in list(current) + [k for k in recorded if k not in current]:
        if recorded.get(key, "<not set>") != current.get(key, "<not set>"):
            return key, recorded.get(key, "<not set>"), current.get(key, "<not set>")
    return None


def check_resume_settings(path: str | Path, current: dict[str, Any], *, log_has_videos: bool) -> None:
    """SpvisError naming the first setting in which this resume differs from the run it continues.

    A log of finished videos without a settings record (an older spvis) cannot be checked and is refused too.
    """
    recorded = read_settings(path)
    if recorded is None:
        if log_has_videos:
            raise SpvisError(f"--resume: {path} is missing, so the settings of the run in {Path(path).parent} are "
                             f"unknown; pass --exist-ok instead to start over")
        return
    difference = first_difference(recorded, current)
    if difference is not None:
        key, before, now = difference
        flag = {"mode": "--mode", "score_thr": "--score-thr", "max_frames": "--max-frames",
                "weights": "--weights/--model",
                "input": "--input", "image_root": "--image-root", "device": "--device"}.get(key, "")
        what = f"{flag} ({key})" if flag else f"setting {key}"
        raise SpvisError(f"--resume: {what} was {before!r} in the run in {Path(path).parent}, now {now!r}; resume "
                         f"with the same settings, or pass --exist-ok to start over")


def record_settings(path: str | Path, settings: dict[str, Any]) -> None:
    """Write the settings record atomically."""
    atomic_write_json(path, settings, indent=1)
