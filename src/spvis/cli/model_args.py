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
