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


_pending: list[int] = []  # the stop signal received inside ``sigterm_raises()``, until the block ends


def _stop_exception(signum: int) -> KeyboardInterrupt:
    return Terminated("received SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise_stop(signum: int, _frame: Any) -> None:
    _pending[:] = [signum]
    raise _stop_exception(signum)


def raise_if_stopped() -> None:
    """Raise again for a stop signal already received in the block. A signal handler's exception is
    swallowed when it lands inside a finalizer or a C callback ("Exception ignored in ..."), and the run
    would then finish as if nothing had happened; the frame loops call this once per frame."""
    if _pending:
        raise _stop_exception(_pending[0])


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises ``Terminated`` and SIGINT ``KeyboardInterrupt``, whatever handler was
    installed before (a library may have replaced Python's SIGINT handler); both come back afterwards.

    Only the main thread can install signal handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    _pending.clear()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _pending.clear()
