"""SIGTERM as an exception, so a terminated command cleans up (temp files, partial videos) as Ctrl-C does.

Python's default SIGTERM disposition ends the process at once: no ``finally``, no ``except BaseException``,
so the hidden temporary files of atomic writes and a half-encoded overlay mp4 stay behind. Inside
``sigterm_raises()`` SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``) instead, which every cleanup path
that handles Ctrl-C already handles.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

SIGTERM_EXIT_CODE = 128 + int(signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM inside ``sigterm_raises()``; a KeyboardInterrupt so Ctrl-C cleanup covers it."""


def _raise_terminated(_signum: int, _frame: Any) -> None:
    raise Terminated("received SIGTERM")


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises ``Terminated``; the previous handler comes back afterwards.

    Only the main thread can install signal handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
