"""``spvis train``: one training stage (segmenter / tracker / refiner, from cfg.STAGE) on one or more processes.

Multi-process: ``torchrun --nproc_per_node N -m spvis train ...`` (multi-node with torchrun's usual flags),
or ``--num-gpus N`` which starts N local processes itself (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="train one stage (segmenter, tracker or refiner) from a config",
        description="Train the stage named by STAGE in the config. Overrides: KEY.SUB=VALUE (e.g. "
                    "SOLVER.MAX_ITER=200). Weights of the previous stage come from MODEL.WEIGHTS.")
    parser.add_argument("--config", required=True, help="YAML config file (e.g. configs/synth/segmenter.yaml)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUTPUT_DIR (optimizer, schedule, RNG included)")
    parser.add_argument("--num-gpus", "--num-processes", dest="num_processes", type=int, default=1,
                        help="local processes to start (DDP; one per GPU, or gloo on CPU); not with torchrun")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spvis.config import load_config
    from spvis.errors import SpvisError

    load_config(args.config, args.overrides)  # fail fast on bad keys before starting processes
    if args.num_processes < 1:
        raise SpvisError(f"--num-gpus must be at least 1, got {args.num_processes}")
    if args.num_processes > 1:
        if "WORLD_SIZE" in os.environ:
            raise SpvisError("--num-gpus cannot be combined with torchrun (torchrun already sets the processes)")
        return _launch_local(args)
    return train_main(args.config, list(args.overrides), resume=args.resume)


def train_main(config: str, overrides: list[str], *, resume: bool) -> int:
    """Train in this process (one rank of torchrun, or alone); returns the exit code."""
    import signal

    from spvis.config import load_config
    from spvis.engine.distributed import init_distributed, shutdown_distributed
    from spvis.engine.trainer import Trainer, configure_threads, setup_reproducibility

    cfg = load_config(config, overrides)
    ctx = init_distributed(cfg.MODEL.DEVICE)
    try:
        configure_threads(ctx, int(cfg.SOLVER.CPU_THREADS))
        setup_reproducibility(cfg)
        dataset = build_train_dataset(cfg)
        model = build_model(cfg)
        evaluator = build_evaluator(cfg, ctx)
        trainer = Trainer(cfg, model, dataset, ctx, evaluator=evaluator, resume=resume)
        result = trainer.train()
        if result.stopped_by != "max_iter":
            return 128 + int(getattr(signal, result.stopped_by))
        return 0
    finally:
        shutdown_distributed()


def build_train_dataset(cfg: Any) -> Any:
    """The training clips of cfg.DATASETS.TRAIN (a name, a json path or a list mixed by DATASETS.RATIO)."""
    from spvis.data import build_clip_dataset
    from spvis.errors import ConfigError

    if not cfg.DATASETS.TRAIN:
        raise ConfigError("config key DATASETS.TRAIN is empty: name a dataset or a YTVIS-format json to train on")
    names = list(cfg.DATASETS.TRAIN)
    return build_clip_dataset(cfg, names if len(names) > 1 else names[0], is_train=True)


def build_model(cfg: Any) -> Any:
    """SPVISModel for cfg.STAGE with everything outside the stage's own module frozen (random init)."""
    from spvis.engine.optim import freeze_for_stage
    from spvis.modeling.meta_arch import SPVISModel

    model = SPVISModel.from_config(cfg)
    freeze_for_stage(model, cfg.STAGE)
    return model


def build_evaluator(cfg: Any, ctx: Any) -> Any:
    """Periodic evaluation on DATASETS.TEST when that split and the inference engines exist, else None."""
    if not cfg.DATASETS.TEST:
        return None
    from spvis.engine.eval_hook import build_eval_hook

    return build_eval_hook(cfg, ctx)


# ------------------------------------------------------------------------------------ local multi-process
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(local_rank: int, world_size: int, port: int, config: str, overrides: list[str], resume: bool) -> None:
    from spvis.errors import SpvisError

    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    try:
        code = train_main(config, overrides, resume=resume)
    except SpvisError as exc:
        print(f"spvis train (rank {local_rank}): error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    if code:
        raise SystemExit(code)


def _launch_local(args: argparse.Namespace) -> int:
    import torch.multiprocessing as mp

    from spvis.errors import SpvisError

    n = args.num_processes
    try:
        mp.start_processes(_worker, args=(n, _free_port(), args.config, list(args.overrides), args.resume),
                           nprocs=n, join=True, start_method="spawn")
    except mp.ProcessExitedException as exc:
        if exc.exit_code in (2,):
            raise SpvisError(f"training process {exc.error_index} failed (see its error above)") from None
        if exc.exit_code and exc.exit_code > 128:
            return int(exc.exit_code)
        raise SpvisError(f"training process {exc.error_index} exited with code {exc.exit_code}") from None
    return 0
