"""``spvis train``: argument parsing over ``spvis.train`` (one stage from cfg.STAGE, one or more processes).

Multi-process: ``torchrun --nproc_per_node N -m spvis train ...`` (multi-node with torchrun's usual flags),
or ``--num-gpus N`` which starts N local processes itself (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import argparse
from typing import Any

from spvis.cli.device_args import positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="train one stage (segmenter, tracker or refiner) from a config",
        description="Train the stage named by STAGE in the config. Overrides: KEY.SUB=VALUE (e.g. "
                    "SOLVER.MAX_ITER=200). Weights of the previous stage come from MODEL.WEIGHTS.")
    parser.add_argument("--config", required=True, help="YAML config file (e.g. configs/synth/segmenter.yaml)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue from the last checkpoint in OUTPUT_DIR (optimizer, schedule, RNG included)")
    again.add_argument("--overwrite", action="store_true",
                       help="OUTPUT_DIR may hold another run: remove that run's files (checkpoints, last_checkpoint, "
                            "model_final.*, metrics.jsonl, config.yaml, env.json, log.txt, event files) and start "
                            "over; other files stay. Without --resume or --overwrite a used OUTPUT_DIR is refused")
    parser.add_argument("--allow-truncated", action="store_true",
                        help="a missing, empty, cut, corrupt or mis-sized training frame ends its video before it "
                             "(an image is left out), with a warning, instead of being an error before the first step")
    parser.add_argument("--num-gpus", "--num-processes", dest="num_processes", type=int, default=1,
                        help="local processes to start (DDP; one per GPU, or gloo on CPU); not with torchrun")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="torch threads per training process on CPU (sets SOLVER.CPU_THREADS; the synth "
                             "recipes use 1)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=run, interrupt_hint="rerun the same command with --resume to continue from the last "
                                                 "checkpoint")


def run(args: argparse.Namespace) -> int:
    from spvis.engine.launch import train

    overrides = list(args.overrides) + ([f"SOLVER.CPU_THREADS={args.threads}"] if args.threads else [])
    return train(args.config, overrides, resume=args.resume, num_processes=args.num_processes,
                 overwrite=args.overwrite, allow_truncated=args.allow_truncated)
