"""--device and --half: the same two flags on every command that runs a model."""

from __future__ import annotations

import argparse


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and --half, shared by the inference commands."""
    parser.add_argument("--device", help="cpu | cuda | cuda:N | auto (default: the config's MODEL.DEVICE, auto for "
                                         "the built-in model: cuda when present)")
    parser.add_argument("--half", action="store_true",
                        help="half-precision inference: bf16 autocast on CPU, fp16 on CUDA (TEST.HALF=auto)")


def device_overrides(args: argparse.Namespace) -> list[str]:
    """The config overrides --device / --half stand for."""
    device = [f"MODEL.DEVICE={args.device}"] if args.device else []
    return [*device, *(["TEST.HALF=auto"] if args.half else [])]
