"""Run one exported graph file: onnxruntime for ONNX, torch.jit for TorchScript; torch tensors in and out."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from spvis.errors import SpvisError

INSTALL_HINT = "pip install 'spvis[export]'"


def require_onnx() -> None:
    """SpvisError with the install command unless onnx, onnxscript and onnxruntime import."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise SpvisError(f"ONNX export and inference need {', '.join(missing)}: {INSTALL_HINT}")


class OnnxRunner:
    """An onnxruntime CPU session over one graph; ``runner(*tensors)`` -> output tensors in the graph's order."""

    def __init__(self, path: str | Path, input_names: Sequence[str]):
        require_onnx()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # --threads, as the torch backend uses
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # no warnings about initializers the optimiser removed
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error classes: a damaged or foreign file
            raise SpvisError(f"{path}: onnxruntime cannot load this graph ({' '.join(str(exc).split())[:300]})") \
                from None
        names = [i.name for i in self.session.get_inputs()]
        if names != list(input_names):
            raise SpvisError(f"{path}: graph inputs are {names}, the manifest says {list(input_names)}")
        self.input_names = names

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        feed = {name: np.ascontiguousarray(x.detach().cpu().numpy()) for name, x in zip(self.input_names, inputs)}
        return tuple(torch.from_numpy(out) for out in self.session.run(None, feed))


class TorchScriptRunner:
    """A TorchScript module on the CPU; ``runner(*tensors)`` -> output tensors in the graph's order."""

    def __init__(self, path: str | Path, input_names: Sequence[str]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice, on every load
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # a damaged or foreign file
            raise SpvisError(f"{path}: not a loadable TorchScript graph ({' '.join(str(exc).split())[:300]})") \
                from None
        self.input_names = list(input_names)

    @torch.no_grad()
    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.module(*inputs))


RUNNERS = {"onnx": OnnxRunner, "torchscript": TorchScriptRunner}
