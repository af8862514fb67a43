"""Optional dependencies: imported when a feature needs them, with a one-line error naming the pip extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from spvis.errors import SpvisError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """``import module`` or SpvisError: "<purpose> needs <module>: pip install 'spvis[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SpvisError(f"{purpose} needs the optional package {module.split('.')[0]!r}: "
                         f"pip install 'spvis[{extra}]'") from None
