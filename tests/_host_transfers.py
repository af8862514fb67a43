"""Count host transfers and syncs made through torch calls (a TorchFunctionMode), on any device.

Counted: ``.item()``, ``.tolist()``, ``.cpu()`` / ``.to("cpu")``, ``.numpy()`` and
``np.asarray(tensor)`` (``__array__``), ``nonzero`` / ``argwhere`` / ``unique`` / ``masked_select`` /
boolean-mask indexing (an output size read back), and ``bool()`` / ``int()`` / ``float()`` of a tensor. On a
GPU each is a device round trip; on the CPU they cost nothing, which is why the count, not the time, is the
test. A ``.numpy()`` of the tensor a counted ``.cpu()`` returned is the same transfer and is not counted twice.
``.to(device)`` counts only with the device written as a string ("cpu"): a ``torch.device`` argument is read as the
model's own device (``x.to(buffer.device)``), which on a CPU run is the host too but on a GPU is no transfer back.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.overrides import TorchFunctionMode

_SYNCING = {
    torch.Tensor.item: "item", torch.Tensor.tolist: "tolist", torch.Tensor.cpu: "cpu",
    torch.Tensor.numpy: "numpy", torch.Tensor.__array__: "numpy", torch.Tensor.nonzero: "nonzero",
    torch.nonzero: "nonzero", torch.argwhere: "nonzero", torch.Tensor.argwhere: "nonzero",
    torch.unique: "unique", torch.Tensor.unique: "unique", torch.masked_select: "nonzero",
    torch.Tensor.masked_select: "nonzero", torch.Tensor.__bool__: "bool", torch.Tensor.__int__: "item",
    torch.Tensor.__float__: "item", torch.Tensor.__index__: "item",
}


def _to_cpu(args, kwargs) -> bool:
    """Whether a ``Tensor.to`` call names the host as a string (module docstring)."""
    targets = [a for a in args[1:] if isinstance(a, str)] + [kwargs.get("device")]
    return any(isinstance(t, str) and torch.device(t).type == "cpu" for t in targets)


class HostTransferCounter(TorchFunctionMode):
    """``with HostTransferCounter() as counter: ...``; then ``counter.total`` and ``counter.kinds`` (a Counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: Counter[str] = Counter()
        self._on_host: dict[int, torch.Tensor] = {}  # tensors a counted transfer returned (held: ids stay unique)

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = _SYNCING.get(func)
        if func is torch.Tensor.to and _to_cpu(args, kwargs):
            kind = "cpu"
        if func is torch.Tensor.__getitem__ and _bool_index(args[1] if len(args) > 1 else None):
            kind = "nonzero"
        if kind == "numpy" and args and self._on_host.get(id(args[0])) is args[0]:
            kind = None  # the host copy a counted .cpu() made
        result = func(*args, **kwargs)
        if kind is not None:
            self.kinds[kind] += 1
            if kind == "cpu" and isinstance(result, torch.Tensor):
                self._on_host[id(result)] = result
        return result


def _bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)
