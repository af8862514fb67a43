"""`spvis config`: list every config key with its default and help, or print a resolved config."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="list config keys or print a resolved config")
    parser.add_argument("--config", help="YAML config file to resolve")
    parser.add_argument("--list", action="store_true", help="list every key with default and help")
    parser.add_argument("overrides", nargs="*", help="KEY.SUB=VALUE overrides")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spvis.config import SCHEMA, describe, load_config

    if args.list:
        print("\n".join(describe(SCHEMA)))
        return 0
    print(load_config(args.config, args.overrides).dump(), end="")
    return 0
