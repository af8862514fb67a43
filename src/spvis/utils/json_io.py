"""Reading json files that users hand us: a missing or malformed file is a one-line DataFormatError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spvis.errors import DataFormatError


def parse_json(path: str | Path, raw: bytes | str) -> Any:
    """``raw`` (the content of ``path``, or of a member of it) parsed; errors name ``path`` and the position."""
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"malformed json (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise DataFormatError(path, "malformed json (not UTF-8 text)") from None
    except RecursionError:
        raise DataFormatError(path, "malformed json (nested too deeply)") from None


def read_json(path: str | Path, *, what: str = "file") -> Any:
    """The parsed json file at ``path``; ``what`` names it in the not-found error ("results file", ...)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, f"{what} not found")
    return parse_json(path, path.read_bytes())
