"""``manifest.json`` of an export folder: what each graph takes and returns, where it came from, how it was checked.

Written last by ``spvis export`` (so a folder with a manifest is complete) and read by ``spvis infer --backend``;
every field the runtime needs is checked when read, and a bad one is a one-line error naming the file and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spvis.errors import DataFormatError, SpvisError

MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "config.yaml"
FORMAT_NAME = "spvis-export"
FORMAT_VERSION = 1
GRAPH_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def manifest_path(folder: str | Path) -> Path:
    """The manifest of an export folder."""
    return Path(folder) / MANIFEST_NAME


def graph_file_names(backend: str, with_tracker: bool) -> dict[str, str]:
    """{graph name: file name} an export of ``backend`` writes."""
    names = ["segmenter"] + (["tracker_step"] if with_tracker else [])
    return {name: f"{name}{GRAPH_SUFFIX[backend]}" for name in names}


def _field(data: dict, key: str, kind: type | tuple, path: Path, where: str = "") -> Any:
    full = f"{where}.{key}" if where else key
    if not isinstance(data, dict) or key not in data:
        raise DataFormatError(path, "missing; not a complete spvis export (rerun spvis export)", field=full)
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, (int, float)):
        raise DataFormatError(path, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}",
                              field=full)
    return value


def read_manifest(folder: str | Path, backend: str) -> dict[str, Any]:
    """The validated manifest of the export folder ``folder`` for ``backend`` (onnx | torchscript)."""
    from spvis.engine.infer_settings import sha256_of
    from spvis.export.graphs import GRAPH_IO

    folder = Path(folder)
    path = manifest_path(folder)
    if not folder.is_dir():
        raise SpvisError(f"{folder}: no such export folder (write one with `spvis export --out {folder}`)")
    if not path.is_file():
        raise SpvisError(f"{path}: missing; {folder} is not an spvis export folder (write one with spvis export)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"not readable JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, "must be a JSON object")
    if _field(data, "format", str, path) != FORMAT_NAME:
        raise DataFormatError(path, f"expected {FORMAT_NAME!r}, got {data['format']!r}", field="format")
    if _field(data, "format_version", int, path) != FORMAT_VERSION:
        raise DataFormatError(path, f"version {data['format_version']} is not the {FORMAT_VERSION} this spvis "
                                    f"reads; export again", field="format_version")
    written = _field(data, "backend", str, path)
    if written != backend:
        raise DataFormatError(path, f"this folder holds {written!r} graphs; run it with --backend {written}",
                              field="backend")
    size = _field(data, "input_size", list, path)
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise DataFormatError(path, f"expected [height, width] of positive integers, got {size!r}",
                              field="input_size")
    config = _field(data, "config", str, path)
    if not (folder / config).is_file():
        raise DataFormatError(path, f"names {config!r}, which is not in {folder}", field="config")
    graphs = _field(data, "graphs", dict, path)
    if "segmenter" not in graphs:
        raise DataFormatError(path, "missing", field="graphs.segmenter")
    for name, graph in graphs.items():
        if name not in GRAPH_IO:
            raise DataFormatError(path, f"unknown graph {name!r} (expected {sorted(GRAPH_IO)})", field="graphs")
        where = f"graphs.{name}"
        file = _field(graph, "file", str, path, where)
        if Path(file).name != file or not (folder / file).is_file():
            raise DataFormatError(path, f"names {file!r}, which is not a file in {folder}", field=f"{where}.file")
        inputs = [_field(i, "name", str, path, f"{where}.inputs") for i in _field(graph, "inputs", list, path, where)]
        if inputs != list(GRAPH_IO[name][0]):
            raise DataFormatError(path, f"expected inputs {list(GRAPH_IO[name][0])}, got {inputs}",
                                  field=f"{where}.inputs")
        outputs = [_field(o, "name", str, path, f"{where}.outputs")
                   for o in _field(graph, "outputs", list, path, where)]
        if outputs != list(GRAPH_IO[name][1]):
            raise DataFormatError(path, f"expected outputs {list(GRAPH_IO[name][1])}, got {outputs}",
                                  field=f"{where}.outputs")
        digest = _field(graph, "sha256", str, path, where)
        if sha256_of(folder / file) != digest:
            raise DataFormatError(path, f"{file} does not match its recorded sha256 (changed or damaged since "
                                        f"the export)", field=f"{where}.sha256")
    return data
