"""The `spvis` command: one entry point with subcommands.

Each subcommand lives in its own module under ``spvis.cli`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (called with the parsed args, returns an exit code).
Subcommand modules import heavy libraries (torch, ...) inside their functions so ``--help`` is fast.
User errors (``SpvisError``) print one line and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from spvis import __version__
from spvis.errors import SpvisError

SUBCOMMAND_MODULES = (
    "spvis.cli.demo_cmd",
    "spvis.cli.synth_cmd",
    "spvis.cli.data_cmd",
    "spvis.cli.train_cmd",
    "spvis.cli.infer_cmd",
    "spvis.cli.eval_cmd",
    "spvis.cli.report_cmd",
    "spvis.cli.analyze_cmd",
    "spvis.cli.checkpoint_cmd",
    "spvis.cli.export_cmd",
    "spvis.cli.models_cmd",
    "spvis.cli.config_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spvis",
        description="SPVIS: video instance segmentation (train, run, evaluate) on CPU or GPU.",
    )
    parser.add_argument("--version", action="version", version=f"spvis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def worker_spvis_error(exc: BaseException) -> str | None:
    """The message of an SpvisError raised inside a DataLoader worker, or None for any other error."""
    text = str(exc)
    if not text.startswith("Caught ") or " in DataLoader worker" not in text.splitlines()[0]:
        return None
    for line in reversed(text.strip().splitlines()):
        name, sep, message = line.partition(": ")
        if sep and name.startswith("spvis.errors."):
            return message
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):  # a lone surrogate from a json "\ud800" escape must print, not crash
        sys.stdout.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except SpvisError as exc:
        if args.debug:
            raise
        print(f"spvis {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        # DataLoader workers re-raise our errors as RuntimeError("Caught DataFormatError in DataLoader worker
        # ... Original Traceback ..."): recover the one-line message so bad data still reads as bad data
        message = worker_spvis_error(exc)
        if message is None or args.debug:
            raise
        print(f"spvis {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from spvis.utils.signals import SIGTERM_EXIT_CODE, Terminated

        terminated = isinstance(exc, Terminated)
        hint = getattr(args, "interrupt_hint", None)  # how to continue, for commands that can (infer, train)
        print(f"spvis {args.command}: {'terminated' if terminated else 'interrupted'}" + (f": {hint}" if hint else ""),
              file=sys.stderr)
        return SIGTERM_EXIT_CODE if terminated else 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except OSError as exc:
        # the environment refused a file operation no command anticipated (disk full, read-only file system,
        # permissions): still one line naming the file, not a traceback
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"spvis {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
