"""User-facing errors: one clear line naming the file and the field, shown without a traceback by the CLI."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (white space folded), or its type name when it has none: how every
    wrapped library error (PIL, PyAV, safetensors) is quoted inside our own one-line errors."""
    return " ".join(str(exc).split()) or type(exc).__name__


class SpvisError(Exception):
    """An error caused by the user's input or environment (bad file, bad config, missing path).

    The CLI prints ``str(error)`` on one line and exits with status 2; ``--debug`` shows the traceback.
    """


class DataFormatError(SpvisError):
    """A dataset or result file is malformed. The message names the file, the entry and the field."""

    def __init__(self, file: str, message: str, *, entry: str | None = None, field: str | None = None):
        self.file = str(file)
        self.entry = entry
        self.field = field
        where = self.file
        if entry:
            where += f": {entry}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class ConfigError(SpvisError):
    """A configuration key is unknown or has a value of the wrong type."""


class CheckpointError(SpvisError):
    """A checkpoint cannot be loaded: unsafe content, wrong architecture, missing or mis-shaped keys."""


class OutputError(SpvisError, OSError):
    """An output file cannot be written (a folder in the way, a read-only or full disk). Also an ``OSError``, so
    code that handles a failed write (``except OSError``) still does."""
