"""Seeded mutations of the fuzz suite's valid inputs (json/yaml trees, bytes, images, weights).

Every mutation returns a ``Mutant``: the new bytes, whether the input is certainly invalid (``must_fail``: the
command has to refuse it) or possibly still valid (exit 0 allowed), the field it touched (the error must name
it) and a short description for the test report. What is certainly invalid is decided per format by the tables
in ``test_fuzz.py``; a mutation there is "may pass" unless a rule says otherwise.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import random
import struct
import zipfile
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import yaml

Path_ = tuple  # a path into a json/yaml tree: keys (str) and list indices (int)


@dataclass
class Mutant:
    """A mutated input: bytes to write, the verdict the command must reach and what was done."""

    data: bytes
    must_fail: bool
    field: str | None
    what: str


# ------------------------------------------------------------------------------------------------ trees
def tree_paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path in a json/yaml tree (containers and leaves), parents before children."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += tree_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += tree_paths(value, prefix + (index,))
    return out


def get_at(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


def set_at(node: Any, path: Path_, value: Any) -> None:
    get_at(node, path[:-1])[path[-1]] = value


def delete_at(node: Any, path: Path_) -> None:
    del get_at(node, path[:-1])[path[-1]]


def kind_of(value: Any) -> str:
    """The json type of ``value``: null, bool, int, float, str, list, dict."""
    if value is None:
        return "null"
    for name, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list),
                        ("dict", dict)):
        if isinstance(value, types):
            return name
    return type(value).__name__


# values of another json type than the one replaced ("type" mutation), one pool per replaced type
_OTHER_TYPES: dict[str, list[Any]] = {
    "null": [0, "x", [], {}],
    "bool": [2, "true", None, [True], {"a": 1}],
    "int": ["7", None, True, [1], {"a": 1}, 1.5],
    "float": ["0.5", None, False, [0.5], {"a": 1}],
    "str": [7, None, True, ["a"], {"a": "b"}, 3.25],
    "list": ["x", 3, None, {"a": [1]}, True],
    "dict": ["x", 3, None, [1, 2], True],
}
_UNICODE = ["\u00e9t\u00e9/\u00fc", "\U0001f984" * 3, "\u202eevil", "\ud800", "a\u0000b", "", " ", "x" * 100_000,
            "\ufeffname", "../../etc/passwd", "C:\\\\windows", "\n\r\t"]
_HUGE = [2**31, 2**63, 2**64 + 7, 10**30, -(2**63) - 1, 1e308, 1.7976931348623157e308]


def mutate_tree(doc: Any, rng: random.Random, paths: list[Path_] | None = None) -> tuple[Any, str, Path_]:
    """(mutated copy of ``doc``, mutation kind, path) for one seeded tree mutation: delete a key or element,
    change a value's type, make a number huge, negative, zero or NaN, put unicode in a string, nest a value,
    duplicate or empty a list, or add an unknown key."""
    doc = json.loads(json.dumps(doc))  # a deep copy with json types only
    paths = paths if paths is not None else tree_paths(doc)
    path = rng.choice(paths) if paths else ()
    value = get_at(doc, path) if path else doc
    kinds = ["delete", "type", "nest"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        kinds += ["huge", "negative", "zero", "nan", "huge", "negative", "nan"]
    if isinstance(value, str):
        kinds += ["unicode", "unicode"]
    if isinstance(value, list):
        kinds += ["duplicate", "empty", "deep"]
    if isinstance(value, dict):
        kinds += ["unknown_key", "empty", "deep"]
    kind = rng.choice(kinds) if path else rng.choice(["type", "deep", "empty"])
    if kind == "delete":
        delete_at(doc, path)
        return doc, kind, path
    if kind == "type":
        new = rng.choice(_OTHER_TYPES[kind_of(value)])
    elif kind == "huge":
        new = rng.choice(_HUGE)
    elif kind == "negative":
        new = -abs(value) if value else -1
        new = new if new != 0 else -1
    elif kind == "zero":
        new = 0 if isinstance(value, int) else 0.0
    elif kind == "nan":
        new = rng.choice([math.nan, math.inf, -math.inf])
    elif kind == "unicode":
        new = rng.choice(_UNICODE)
    elif kind == "nest":
        new = value
        for _ in range(rng.randint(1, 4)):
            new = [new] if rng.random() < 0.5 else {"value": new}
    elif kind == "deep":  # deeper than any parser's recursion limit
        new = "DEEP_NESTING_MARKER"
    elif kind == "duplicate":
        new = value + value[:1] if value else [value]
    elif kind == "empty":
        new = type(value)()
    elif kind == "unknown_key":
        new = dict(value)
        new[rng.choice(["extra", "Id", "ID", "videos_", "\u00fcber"])] = 1
    else:
        raise AssertionError(kind)
    if path:
        set_at(doc, path, new)
    else:
        doc = new
    return doc, kind, path


DEEP_LEVELS = 100_000


def dump_json(doc: Any) -> bytes:
    """json text of ``doc`` (NaN/Infinity as Python writes them); the deep-nesting marker becomes 100k brackets."""
    text = json.dumps(doc)
    return text.replace('"DEEP_NESTING_MARKER"', "[" * DEEP_LEVELS + "]" * DEEP_LEVELS).encode("utf-8", "surrogatepass")


def dump_yaml(doc: Any) -> bytes:
    """yaml text of ``doc``; the deep-nesting marker becomes 100k flow brackets."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=False, width=1 << 20)
    return text.replace("DEEP_NESTING_MARKER", "[" * DEEP_LEVELS + "]" * DEEP_LEVELS).encode("utf-8")


# ------------------------------------------------------------------------------------------------ bytes
def mutate_bytes(data: bytes, rng: random.Random, kinds: list[str] | None = None) -> tuple[bytes, str]:
    """(mutated bytes, kind): truncate, flip bytes, insert or zero bytes, empty, foreign content, a BOM."""
    kinds = kinds or ["truncate", "truncate", "flip", "flip", "flip", "insert", "zero_tail", "zero_range", "empty",
                      "garbage", "bom", "duplicate"]
    kind = rng.choice(kinds)
    n = len(data)
    if kind == "truncate":
        return data[: rng.randrange(0, max(n, 1))], kind
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(out), kind
    if kind == "insert":
        at = rng.randrange(n + 1)
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[at:], kind
    if kind == "zero_tail":
        at = rng.randrange(n)
        return data[:at] + bytes(n - at), kind
    if kind == "zero_range":
        at = rng.randrange(n)
        end = min(n, at + rng.randint(1, 64))
        return data[:at] + bytes(end - at) + data[end:], kind
    if kind == "empty":
        return b"", kind
    if kind == "garbage":
        return rng.choice([b"\x89PNG\r\n\x1a\n" + bytes(40), b"PK\x03\x04" + bytes(30), b"%PDF-1.4\n",
                           b"<html></html>", bytes(rng.randrange(256) for _ in range(200)), b"\xff" * 64]), kind
    if kind == "bom":
        return b"\xef\xbb\xbf" + data, kind
    if kind == "duplicate":
        return data + data, kind
    raise AssertionError(kind)


# ------------------------------------------------------------------------------------------------ images
def patch_jpeg_size(data: bytes, height: int, width: int) -> bytes | None:
    """The JPEG with its SOF header claiming ``height`` x ``width`` (None when it has no baseline SOF)."""
    sof = data.find(b"\xff\xc0")
    if sof < 0:
        return None
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9:]


def patch_png_size(data: bytes, height: int, width: int, *, fix_crc: bool) -> bytes:
    """The PNG with its IHDR claiming ``width`` x ``height`` (CRC recomputed when ``fix_crc``)."""
    import zlib

    out = bytearray(data)
    out[16:24] = struct.pack(">II", width, height)
    if fix_crc:
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])) & 0xFFFFFFFF)
    return bytes(out)


def encode_image(array: np.ndarray, fmt: str, **kwargs: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ weights
def mutate_state(state: dict[str, np.ndarray], rng: random.Random) -> tuple[Any, str, str | None, bool]:
    """(mutated weights object, kind, key, must_fail) for a name -> array dict: a key removed, added or renamed,
    a shape changed, NaN/inf values, another dtype, a non-array value, another container."""
    state = {k: v.copy() for k, v in state.items()}
    keys = sorted(state)
    key = rng.choice(keys)
    kind = rng.choice(["delete", "add", "rename", "shape", "nan", "dtype", "not_array", "container", "empty",
                       "shape", "nan", "scalar_shape"])
    if kind == "delete":
        del state[key]
        return state, kind, key, True
    if kind == "add":
        state[key + "_extra"] = np.zeros(3, np.float32)
        return state, kind, key + "_extra", True
    if kind == "rename":
        state["x" + key] = state.pop(key)
        return state, kind, key, True
    if kind == "shape":
        value = state[key]
        state[key] = np.zeros(tuple(s + 1 for s in value.shape) or (2,), value.dtype)
        return state, kind, key, True
    if kind == "scalar_shape":
        state[key] = np.zeros((), np.float32) if state[key].shape != () else np.zeros((1, 1), np.float32)
        return state, kind, key, True
    if kind == "nan":
        floats = [k for k in keys if state[k].dtype.kind == "f" and state[k].size]
        key = rng.choice(floats)
        state[key].reshape(-1)[rng.randrange(state[key].size)] = rng.choice([np.nan, np.inf, -np.inf])
        return state, kind, key, True
    if kind == "dtype":  # float16/float64/int: may load (converted) or be refused, never a traceback
        state[key] = state[key].astype(rng.choice([np.float16, np.float64, np.int32, np.int8, np.bool_]))
        return state, kind, key, False
    if kind == "not_array":
        state[key] = rng.choice(["text", None, [1.0, 2.0], {"a": 1}, True])
        return state, kind, key, True
    if kind == "container":
        return rng.choice([list(state.values()), tuple(state), "weights", 7, None]), kind, None, True
    if kind == "empty":
        return {}, kind, None, True
    raise AssertionError(kind)


def pickle_bytes(obj: Any) -> bytes:
    """A detectron2-style .pkl: a pickle of ``{"model": ...}`` (numpy arrays kept as they are)."""
    return pickle.dumps({"model": obj, "__author__": "fuzz"} if isinstance(obj, dict) else obj, protocol=2)


def torch_bytes(obj: Any) -> bytes:
    """A .pth written by torch.save of ``{"model": ...}`` with arrays as tensors (plain values kept)."""
    import torch

    def convert(value: Any) -> Any:
        return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value

    if isinstance(obj, dict):
        obj = {"model": {k: convert(v) for k, v in obj.items()}}
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def safetensors_bytes(state: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in state.items()}, metadata={"format": "spvis"})


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    """(header json, tensor bytes) of a safetensors file."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8: 8 + length]), data[8 + length:]


def join_safetensors(header_text: bytes, body: bytes) -> bytes:
    return struct.pack("<Q", len(header_text)) + header_text + body


def zip_with(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


Mutator = Callable[[random.Random], Mutant]
