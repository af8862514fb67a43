"""The model an ``spvis infer`` command line names: --weights or a zoo --model, --config, overrides, --tracker."""

from __future__ import annotations

import argparse

from spvis.cli.device_args import device_overrides


def load_model_from_args(args: argparse.Namespace, loader):
    """(model, cfg, weights path): ``args.model`` (a zoo name) resolved to its weights, loaded by ``loader``
    (``spvis.engine.inference.load_model``, passed by the caller so that tests can replace it there), --tracker set
    into TEST.TRACKER, and an offline run with an online-only association refused."""
    from spvis.errors import SpvisError

    weights = args.weights
    backend = getattr(args, "backend", "torch")
    if backend != "torch":
        return _load_exported(args, backend)
    if args.model:
        from spvis.zoo.resolve import resolve_model

        weights = str(resolve_model(args.model))
    model, cfg = loader(weights, args.config, [*device_overrides(args), *args.overrides])
    if args.tracker is not None:
        cfg.TEST.TRACKER = args.tracker
    if args.mode == "offline" and cfg.TEST.TRACKER == "minvis":
        raise SpvisError("--tracker minvis is an online association (the refiner needs the learned tracker); "
                         "use --mode online")
    return model, cfg, weights


def _load_exported(args: argparse.Namespace, backend: str):
    """(graph model, cfg, export folder) for --backend onnx / torchscript: --weights names an `spvis export` folder."""
    from spvis.errors import SpvisError
    from spvis.export.runtime import load_exported_model

    if args.model or args.config or not args.weights:
        raise SpvisError(f"--backend {backend} runs an `spvis export` folder: give it as --weights DIR (not --model "
                         f"or --config; the folder holds its config)")
    if args.mode != "online":
        raise SpvisError(f"--backend {backend} runs the online model (segmenter + tracker step); use --mode online")
    model, cfg = load_exported_model(args.weights, backend, [*device_overrides(args), *args.overrides])
    if args.tracker is not None:
        cfg.TEST.TRACKER = args.tracker
    return model, cfg, args.weights
