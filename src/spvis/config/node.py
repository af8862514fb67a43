"""A small, strict configuration tree: declared keys with types and help, YAML files, KEY=VALUE overrides.

Why not yacs: yacs lets code add keys by assignment, so a typo silently creates a new key (see
STYLE.md). Here every key is declared once in ``defaults.py``; merging a file or an override with an
unknown key or a value of the wrong type raises ``ConfigError`` naming the key (and the file).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from spvis.errors import ConfigError


@dataclass(frozen=True)
class Key:
    """Declaration of one leaf: its default value, its type and a one-line help text."""

    default: Any
    help: str = ""
    type: type | tuple[type, ...] | None = None  # inferred from the default when None
    choices: tuple[Any, ...] | None = None
    # numbers (and the numbers of a list) must be finite and at least ``low`` (None: any), above 0 if ``positive``
    low: float | None = 0
    positive: bool = False
    high: float | None = None  # numbers above are refused: a size or layer count no machine can build (fuzz suite)
    elem: type | tuple[type, ...] | None = None  # list keys: type of every element (inferred from the default)
    length: int | None = None  # list keys: exact number of elements

    def elem_type(self) -> type | tuple[type, ...] | None:
        """The type every element of a list key must have (None: a list whose elements are not checked)."""
        if self.elem is not None:
            return self.elem
        if not isinstance(self.default, (list, tuple)) or not self.default:
            return None
        kinds = {bool if isinstance(v, bool) else float if isinstance(v, float) else type(v) for v in self.default}
        if kinds <= {int, float} and float in kinds:
            return (float, int)
        return kinds.pop() if len(kinds) == 1 else None

    def value_type(self) -> type | tuple[type, ...]:
        if self.type is not None:
            return self.type
        if isinstance(self.default, bool):
            return bool
        if isinstance(self.default, float):
            return (float, int)
        if isinstance(self.default, int):
            return int
        if isinstance(self.default, (list, tuple)):
            return (list, tuple)
        if self.default is None:
            return (str, type(None))
        return type(self.default)


class CfgNode(dict):
    """A dict with attribute access whose leaves were declared in a schema.

    ``cfg.MODEL.TRACKER.DECODER_LAYERS`` reads a value; assignment to an undeclared key raises.
    """

    def __init__(self, values: dict[str, Any] | None = None, schema: dict[str, Any] | None = None):
        super().__init__()
        object.__setattr__(self, "_schema", schema if schema is not None else {})
        for name, value in (values or {}).items():
            super().__setitem__(name, value)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self:
            raise ConfigError(f"unknown config key {name!r}")
        self[name] = value

    def __deepcopy__(self, memo: dict) -> "CfgNode":
        return CfgNode({k: copy.deepcopy(v, memo) for k, v in self.items()}, self._schema)

    def clone(self) -> "CfgNode":
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (for YAML/JSON dumps and checkpoints)."""
        return {k: (v.to_dict() if isinstance(v, CfgNode) else copy.deepcopy(v)) for k, v in self.items()}

    def dump(self) -> str:
        """The full config as YAML, loadable by ``load_config``."""
        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    # ------------------------------------------------------------------ merging
    def merge_dict(self, values: dict[str, Any], *, source: str = "<dict>", prefix: str = "") -> None:
        """Merge a nested dict into this node, checking every key and type against the schema."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: {prefix or 'config'} must be a mapping, got {type(values).__name__}")
        for name, value in values.items():
            full = f"{prefix}{name}"
            if name not in self._schema:
                raise ConfigError(f"{source}: unknown config key {full}{_suggest(name, self._schema)}")
            decl = self._schema[name]
            if isinstance(decl, dict):
                if not isinstance(value, dict):
                    raise ConfigError(f"{source}: config key {full} is a section; expected a mapping, got {value!r}")
                self[name].merge_dict(value, source=source, prefix=full + ".")
            else:
                self[name] = _check_value(decl, value, full, source)

    def merge_file(self, path: str | Path) -> None:
        """Merge a YAML file (with optional ``_BASE_: other.yaml`` chain, relative to the file)."""
        self.merge_dict(_read_yaml_with_bases(Path(path)), source=str(path))

    def merge_overrides(self, overrides: Iterable[str]) -> None:
        """Merge ``KEY.SUB=VALUE`` strings; VALUE is parsed as YAML (``1e-4``, ``[1,2]``, ``true``)."""
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"command line: override {item!r} must look like KEY.SUB=VALUE")
            dotted, raw = item.split("=", 1)
            try:
                value = yaml.safe_load(raw) if raw != "" else ""
            except (yaml.YAMLError, RecursionError):
                value = raw
            nested: Any = value
            for part in reversed(dotted.strip().split(".")):
                nested = {part: nested}
            self.merge_dict(nested, source="command line")


def _suggest(name: str, schema: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(schema), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_scalar(decl: Key, expected: type | tuple[type, ...], value: Any, where: str, source: str) -> None:
    """ConfigError unless ``value`` has the ``expected`` type and, as a number, is finite and in range."""
    if (isinstance(value, bool) and expected in ((float, int), int)) or not isinstance(value, expected):
        raise ConfigError(f"{source}: config key {where} expects {_type_name(expected)}, got {_short(value)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{source}: config key {where} must be a finite number, got {value!r}")
        if decl.positive and value <= 0:
            raise ConfigError(f"{source}: config key {where} must be positive, got {value!r}")
        if decl.low is not None and value < decl.low:
            raise ConfigError(f"{source}: config key {where} must be at least {decl.low:g}, got {value!r}")
        if decl.high is not None and value > decl.high:
            raise ConfigError(f"{source}: config key {where} must be at most {decl.high:g}, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_value(decl: Key, value: Any, full: str, source: str) -> Any:
    expected = decl.value_type()
    _check_scalar(decl, expected, value, full, source)
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        if decl.length is not None and len(value) != decl.length:
            raise ConfigError(f"{source}: config key {full} expects a list of {decl.length} elements, got "
                              f"{len(value)}: {_short(value)}")
        elem = decl.elem_type()
        if elem is not None:
            for k, item in enumerate(value):
                _check_scalar(decl, elem, item, f"{full}[{k}]", source)
    if expected == (float, int) and isinstance(value, int):
        value = float(value)
    if decl.choices is not None and not _is_choice(value, decl.choices):
        raise ConfigError(f"{source}: config key {full} must be one of {list(decl.choices)}, got {value!r}")
    return value


def _is_choice(value: Any, choices: tuple[Any, ...]) -> bool:
    """``value`` is one of ``choices``; a choice ``"prefix:*"`` admits any string ``"prefix:<something>"``."""
    if value in choices:
        return True
    return isinstance(value, str) and any(
        isinstance(c, str) and c.endswith("*") and value.startswith(c[:-1]) and len(value) > len(c) - 1
        for c in choices)


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        names = [t.__name__ for t in expected if t is not type(None)]
        if expected == (float, int):
            return "a number"
        if expected == (list, tuple):
            return "a list"
        return " or ".join(names)
    return {bool: "true/false", int: "an integer", str: "a string", float: "a number",
            dict: "a mapping"}.get(expected, expected.__name__)


def _read_yaml_with_bases(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: _BASE_ chain loops back to itself")
    data = read_yaml(path, what="config file") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping at the top level")
    base = data.pop("_BASE_", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: _BASE_ must be the path of another yaml file, got {_short(base)}")
    merged = _read_yaml_with_bases(resolve_base(path, base), _seen + (path.resolve(),))
    _deep_update(merged, data)
    return merged


PACKAGE_CONFIGS = Path(__file__).resolve().parent.parent / "configs"  # the recipes shipped in the package


def packaged_config(name: str | Path) -> Path | None:
    """The shipped config called ``name`` (``synth/segmenter.yaml``, optionally ``configs/...``), else None."""
    parts = Path(name).parts
    parts = parts[1:] if parts and parts[0] == "configs" else parts
    candidate = PACKAGE_CONFIGS.joinpath(*parts) if parts else None
    return candidate if candidate is not None and candidate.is_file() else None


def resolve_base(path: Path, base: str) -> Path:
    """The file ``_BASE_: base`` of ``path`` names: relative to ``path``'s folder when that file exists, else a
    config shipped in the package (so a user's yaml can start from ``_BASE_: synth/segmenter.yaml``)."""
    beside = path.parent / base
    if beside.is_file():
        return beside
    return packaged_config(base) or beside


def read_yaml(path: Path, *, what: str = "yaml file") -> Any:
    """The parsed yaml at ``path`` (safe loader); ConfigError naming the file when it is missing, unreadable,
    not UTF-8, malformed or nested too deeply."""
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                          "save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def _deep_update(target: dict[str, Any], update: dict[str, Any]) -> None:
    for name, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            _deep_update(target[name], value)
        else:
            target[name] = value


def build_node(schema: dict[str, Any]) -> CfgNode:
    """Instantiate a ``CfgNode`` holding every default of ``schema`` (a nested dict of ``Key``)."""
    node = CfgNode(schema=schema)
    for name, decl in schema.items():
        if isinstance(decl, dict):
            dict.__setitem__(node, name, build_node(decl))
        elif isinstance(decl, Key):
            dict.__setitem__(node, name, copy.deepcopy(decl.default))
        else:
            raise TypeError(f"schema entry {name!r} must be a Key or a dict, got {decl!r}")
    return node


def describe(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """One line per key: ``NAME = default  # help`` (used by ``spvis config --list``)."""
    lines = []
    for name, decl in schema.items():
        if isinstance(decl, dict):
            lines.extend(describe(decl, prefix + name + "."))
        else:
            lines.append(f"{prefix}{name} = {decl.default!r}  # {decl.help}")
    return lines
