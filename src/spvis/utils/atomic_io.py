"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader (or a resumed run) therefore sees either the previous complete file or the new complete one,
never a truncated file, even if the process is killed or the disk fills up while writing. The finished
file gets the permissions a plain ``open()`` would give it (``0o666`` less the umask): ``mkstemp``
creates its file ``0o600``, which would hide results from every other user of a shared machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from spvis.errors import OutputError


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open(path, "w")`` gives a new file in this process."""
    mask = os.umask(0)  # the only portable way to read the umask is to set it and put it back
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def temp_file_beside(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[str]:
    """Yield the name of a new hidden temp file ``.<name>.<random><suffix>`` next to ``path``.

    On a clean exit the temp file is fsynced, given the default file mode and renamed onto ``path``; on
    any exception (``KeyboardInterrupt``, ``SystemExit`` from a signal handler, a full disk) it is removed
    and ``path`` keeps its previous content.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, cannot write a file there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({_reason(exc)})") from None
    os.close(fd)
    try:
        yield tmp_name
        try:
            finish_temp_file(tmp_name, path)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write here ({_reason(exc)})") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _reason(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable_dir(folder: Path, prefix: str) -> None:
    """SpvisError (``prefix``: the flag and path) unless ``folder`` is, or can be made as, a writable folder."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{prefix}: {folder} exists and is not a folder")
    base = _nearest_existing(folder.absolute())
    if not base.is_dir():
        raise OutputError(f"{prefix}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{prefix}: folder {base} is not writable")


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as a Path, after checking that an output folder can be written there (before any work starts)."""
    path = Path(path)
    _check_creatable_dir(path, f"{flag} {path}")
    return path


def refuse_overwriting_inputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[tuple[str, str | os.PathLike | None]],
                              flag: str = "--out") -> None:
    """Refuse, before anything is written, any output path that resolves to an input file.

    ``inputs`` are (flag, path) pairs (``("--input", "video.mp4")``); a symlink or ``./`` spelling of the
    same file counts as the same file. ``spvis infer --input d/v.mp4 --out d`` would otherwise replace the
    video by its own overlay.
    """
    from spvis.errors import SpvisError

    def key(p: str | os.PathLike) -> Path:
        return Path(p).expanduser().resolve()

    protected = {key(path): name for name, path in inputs if path is not None and Path(path).is_file()}
    for out in outputs:
        name = protected.get(key(out))
        if name is not None:
            raise SpvisError(f"{out}: {flag} would overwrite the {name} file; choose another output folder")


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as a Path, after checking that a file can be (atomically) written there: not a folder, and its
    folder exists or can be made and is writable. Lets a command fail in its first second, not after the work."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file name")
    _check_creatable_dir(path.parent, f"{flag} {path}")
    return path


TEMP_RANDOM = r"[a-z0-9_]{8}"  # the random part ``tempfile.mkstemp`` puts in a name


def stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """The hidden temporaries a killed atomic write of ``path`` can leave beside it: ``.<name>.<random>.tmp``
    (``temp_file_beside``) and ``.<stem>.<random><suffix>`` (``spvis.viz.video_writer``). SIGKILL or a power cut
    runs no cleanup, so the next run that writes ``path`` removes them (``remove_stale_temp_files``)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.(?:{re.escape(path.name)}\.{TEMP_RANDOM}\.tmp|{re.escape(path.stem)}\.{TEMP_RANDOM}"
                         rf"{re.escape(path.suffix)})$")
    return sorted(p for p in path.parent.iterdir() if pattern.match(p.name) and p.is_file())


def remove_stale_temp_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete the stale temporaries of every path in ``paths`` (see ``stale_temp_files``); returns them."""
    removed = [stale for path in paths for stale in stale_temp_files(path)]
    for stale in removed:
        stale.unlink(missing_ok=True)
    return removed


def finish_temp_file(tmp_name: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync ``tmp_name``, give it the default file mode and rename it onto ``path``."""
    with open(tmp_name, "rb") as handle:
        os.fsync(handle.fileno())
    os.chmod(tmp_name, default_file_mode())
    os.replace(tmp_name, path)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on a clean exit it replaces ``path`` atomically."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', got {mode!r}")
    with temp_file_beside(path) as tmp_name:
        with open(tmp_name, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = None) -> None:
    """Serialise ``obj`` as JSON to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        json.dump(obj, handle, indent=indent)


def atomic_save(path: str | os.PathLike, writer: Callable[[str], None]) -> None:
    """Atomically produce ``path`` with a writer that only accepts a file name (e.g. safetensors ``save_file``)."""
    with temp_file_beside(path) as tmp_name:
        writer(tmp_name)
