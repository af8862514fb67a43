"""``spvis export``: the per-frame segmenter and the tracker step as ONNX or TorchScript graphs, checked against eager.

Writes OUT/segmenter.onnx, OUT/tracker_step.onnx (``.pt`` for TorchScript), OUT/config.yaml and OUT/manifest.json;
``spvis infer --backend onnx --weights OUT`` runs them. The library code is ``spvis.export``.
"""

from __future__ import annotations

import argparse
from typing import Any

from spvis.cli.device_args import add_threads_argument, apply_threads


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="export the segmenter and tracker step as ONNX or TorchScript graphs",
        description="Export the per-frame segmenter and the learned tracker's step as graphs for frames of one size, "
                    "check each against the eager model on a random and a real input, and write them with "
                    "manifest.json into --out. `spvis infer --backend onnx --weights OUT` runs them.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--weights", help="model weights (.safetensors or a model folder; default: the built-in "
                                         "demo model)")
    which.add_argument("--model", help="a zoo model by name (`spvis models`)")
    parser.add_argument("--config", help="config YAML (default: the one saved beside the weights)")
    parser.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                        help="onnx (needs `pip install 'spvis[export]'`; default) or torchscript")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 18, at least 16 for GridSample)")
    parser.add_argument("--size", help="frame size HxW of the videos the graphs will run on (the graphs take one "
                                       "fixed network input size; default: a MIN_SIZE_TEST x MAX_SIZE_TEST frame)")
    parser.add_argument("--tolerance", type=float, help="largest abs difference to eager allowed on any output "
                                                        "(default 1e-3)")
    parser.add_argument("--check-input", help="video or frame folder whose first two frames are the real check "
                                              "input (default: a procedural spvis synth video)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the graphs, config.yaml and manifest.json of an earlier export in --out "
                             "(other files stay)")
    add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W), both >= 1 (SpvisError otherwise)."""
    from spvis.errors import SpvisError

    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SpvisError(f"--size takes HxW, e.g. 192x256, got {text!r}") from None
    if height < 1 or width < 1:
        raise SpvisError(f"--size takes positive sizes, got {text!r}")
    return height, width


def run(args: argparse.Namespace) -> int:
    from spvis.engine.inference import BUILTIN_WEIGHTS, load_model
    from spvis.errors import SpvisError
    from spvis.export.exporter import DEFAULT_OPSET, DEFAULT_TOLERANCE, export_model
    from spvis.utils.atomic_io import check_output_dir

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    if args.format == "onnx" and not 16 <= opset <= 23:
        raise SpvisError(f"--opset must be in 16..23 (GridSample needs 16), got {opset}")
    if args.format != "onnx" and args.opset is not None:
        raise SpvisError("--opset applies to --format onnx only")
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    if not tolerance > 0:
        raise SpvisError(f"--tolerance must be > 0, got {args.tolerance}")
    out_dir = check_output_dir(args.out)
    apply_threads(args)
    weights = args.weights
    if args.model:
        from spvis.zoo.resolve import resolve_model

        weights = str(resolve_model(args.model))
    model, cfg = load_model(weights, args.config, ["MODEL.DEVICE=cpu", *args.overrides])
    frame_size = parse_size(args.size) if args.size else (int(cfg.INPUT.MIN_SIZE_TEST), int(cfg.INPUT.MAX_SIZE_TEST))
    from spvis.checkpoints.io import weights_file

    report = export_model(model, cfg, out_dir, backend=args.format, opset=opset, frame_size=frame_size,
                          tolerance=tolerance, overwrite=args.overwrite, check_input=args.check_input,
                          source=str(weights_file(weights or BUILTIN_WEIGHTS)))
    height, width = report.input_size
    print(f"exported for {frame_size[0]}x{frame_size[1]} frames (network input {height}x{width}):")
    for name, diffs in report.max_abs_diff.items():
        print(f"  {name}: max abs difference to eager " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
              + f" (tolerance {tolerance:g})")
    print(f"wrote {', '.join(str(p) for p in report.files)}")
    return 0
