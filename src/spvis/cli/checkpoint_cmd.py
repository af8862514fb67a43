"""`spvis checkpoint import|export|verify`: convert official weights; turn a training checkpoint into
inference weights; check a model against a reference bundle."""

from __future__ import annotations

import argparse

from spvis.errors import SpvisError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("checkpoint", help="import official weights / verify against a reference bundle")
    commands = parser.add_subparsers(dest="checkpoint_command", metavar="ACTION")

    imp = commands.add_parser("import", help="official Mask2Former/DVIS/DVIS++ weights -> our safetensors + config")
    imp.add_argument("src", help="official weights file (.pkl detectron2, .pth)")
    imp.add_argument("--format", required=True, choices=("mask2former", "dvis", "dvis++"), help="source model family")
    imp.add_argument("--official-config", required=True, help="the official (fully dumped) detectron2-style yaml")
    imp.add_argument("--out", required=True, help="output .safetensors file, or a model folder (gets model.safetensors, config.yaml, MODEL_CARD.md)")
    imp.set_defaults(func=_import)

    exp = commands.add_parser("export", help="a training checkpoint (model_*.pth) -> safetensors + config")
    exp.add_argument("src", help="training checkpoint written by spvis train (OUTPUT_DIR/model_NNNNNNN.pth)")
    exp.add_argument("--out", required=True, help="output .safetensors file (config .yaml beside it) or model folder")
    exp.set_defaults(func=_export)

    ver = commands.add_parser("verify", help="run a model on a reference bundle and compare every tensor")
    ver.add_argument("bundle_dir", nargs="?", help="bundle directory (inputs.npz, outputs.npz, checkpoint.pth, config.yaml)")
    ver.add_argument("--bundle", help="bundle directory (same as the positional argument)")
    ver.add_argument("--weights", help="our weights to test: a .safetensors file or a model folder (default: "
                                       "import the bundle's checkpoint.pth)")
    ver.add_argument("--atol", type=float, default=5e-5, help="absolute tolerance (default 5e-5)")
    ver.add_argument("--rtol", type=float, default=1e-5, help="tolerance relative to max|reference| (default 1e-5)")
    ver.set_defaults(func=_verify)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _import(args: argparse.Namespace) -> int:
    from spvis.checkpoints.importer import import_official
    from spvis.checkpoints.io import config_path_for

    out = import_official(args.src, fmt=args.format, official_config=args.official_config, out=args.out)
    print(f"wrote {out} and {config_path_for(out)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from spvis.checkpoints.io import config_path_for
    from spvis.engine.checkpointing import export_training_checkpoint

    out = export_training_checkpoint(args.src, args.out)
    print(f"wrote {out} and {config_path_for(out)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from spvis.checkpoints.verify import format_table, run_bundle

    bundle = args.bundle or args.bundle_dir
    if not bundle:
        raise SpvisError("checkpoint verify: give the bundle directory (positional or --bundle)")
    rows, notes = run_bundle(bundle, weights=args.weights, atol=args.atol, rtol=args.rtol)
    print(format_table(rows))
    for note in notes:
        print(f"note: {note}")
    failed = [row.key for row in rows if not row.passed]
    print(f"{len(rows) - len(failed)}/{len(rows)} tensors within tolerance" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed or not rows else 0
