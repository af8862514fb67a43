"""--device, --half and --threads: the same flags on every command that runs a model."""

from __future__ import annotations

import argparse


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --half and --threads, shared by the inference commands."""
    parser.add_argument("--device", help="cpu | cuda | cuda:N | auto (default: the config's MODEL.DEVICE, auto for "
                                         "the built-in model: cuda when present)")
    parser.add_argument("--half", action="store_true",
                        help="half-precision inference: bf16 autocast on CPU, fp16 on CUDA (TEST.HALF=auto)")
    add_threads_argument(parser)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """--threads, shared by every command that computes on the CPU."""
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="CPU threads (default: $OMP_NUM_THREADS, else one fewer than the cores, at most 8; "
                             "see the README's Threads section for the measurement)")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def apply_threads(args: argparse.Namespace) -> int:
    """Set the thread count --threads asks for (or the default); returns it."""
    from spvis.utils.threads import set_threads

    return set_threads(getattr(args, "threads", None))


def device_overrides(args: argparse.Namespace) -> list[str]:
    """The config overrides --device / --half stand for."""
    device = [f"MODEL.DEVICE={args.device}"] if args.device else []
    return [*device, *(["TEST.HALF=auto"] if args.half else [])]
