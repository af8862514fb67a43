"""Safe reading of foreign checkpoint files: never runs arbitrary pickled code.

detectron2 ``.pkl`` files (COCO Mask2Former weights) are pickles of dicts of numpy arrays. They are read
with an Unpickler that resolves only plain containers and numpy array/dtype reconstruction; any other
global (a class, a function, os.system, ...) is refused with a one-line error naming it. ``.pth`` files
go through ``torch.load(weights_only=True)``; ``.safetensors`` through ``spvis.checkpoints.io``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spvis.checkpoints.io import read_safetensors
from spvis.errors import CheckpointError

# (module, name) pairs a numpy-array pickle needs; nothing that can execute code
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "int"), ("builtins", "float"), ("builtins", "str"), ("builtins", "bytes"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # python-2 era pickles store array bytes as latin-1 text
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` only returns the globals in the allow-list above."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise CheckpointError(
            f"{self.source}: refused to unpickle {module}.{name} (only plain containers and numpy arrays "
            f"are allowed in .pkl weights)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(f"{self.source}: refused a persistent reference in a .pkl file (not a weights file)")


def _array_to_tensor(value: np.ndarray, key: Any, source: str) -> torch.Tensor:
    """A tensor of a numeric numpy array; object, string or other non-numeric arrays are a CheckpointError."""
    if value.dtype.kind not in "biufc":  # bool, int, uint, float, complex
        raise CheckpointError(f"{source}: entry {key!r} is a numpy array of dtype {value.dtype} (not numbers); "
                              f"weights are numeric arrays")
    try:
        return torch.from_numpy(np.ascontiguousarray(value))
    except TypeError as exc:  # a numeric dtype torch has no type for
        raise CheckpointError(f"{source}: entry {key!r}: numpy dtype {value.dtype} has no torch equivalent "
                              f"({exc})") from None


def _to_tensor_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source}: expected a dict of weights (or a dict with key 'model'), got {type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            state[str(key)] = _array_to_tensor(value, key, source)
        elif isinstance(value, torch.Tensor):
            state[str(key)] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            state[str(key)] = torch.tensor(value)
        else:
            raise CheckpointError(f"{source}: entry {key!r} is a {type(value).__name__}, not an array")
    return state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights of a .pkl (detectron2), .pth/.pt (torch) or .safetensors file as a flat name -> tensor dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors(path)
    if suffix == ".pkl":
        try:
            with path.open("rb") as handle:
                obj = RestrictedUnpickler(handle, str(path)).load()
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable pickle of arrays ({type(exc).__name__}: {exc})") from None
        return _to_tensor_dict(obj, str(path))
    if suffix in (".pth", ".pt", ".bin"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{path}: torch.load(weights_only=True) refused or failed: {message}") from None
        # detectron2 training checkpoints also carry optimizer/scheduler/iteration: only 'model' is used
        if isinstance(obj, dict) and "model" in obj:
            obj = obj["model"]
        elif isinstance(obj, dict) and "state_dict" in obj:
            obj = obj["state_dict"]
        return _to_tensor_dict(obj, str(path))
    raise CheckpointError(f"{path}: unknown checkpoint extension {suffix!r} (.pkl, .pth, .pt, .safetensors)")
