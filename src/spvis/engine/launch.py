"""Training runs as a library call: one stage (cfg.STAGE) in this process or in N local processes.

``train(config, overrides, resume=False, overwrite=False, num_processes=1)`` is what ``spvis train`` calls;
``torchrun --nproc_per_node N -m spvis train ...`` runs ``train_main`` once per rank instead. Both refuse, before
any work, an OUTPUT_DIR holding another run unless it is resumed or overwritten (``spvis.engine.run_dir``).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import nn

from spvis.errors import ConfigError, SpvisError


def build_train_dataset(cfg: Any) -> Any:
    """The training clips of cfg.DATASETS.TRAIN (a name, a json path or a list mixed by DATASETS.RATIO)."""
    from spvis.data import build_clip_dataset

    if not cfg.DATASETS.TRAIN:
        raise ConfigError("config key DATASETS.TRAIN is empty: name a dataset or a YTVIS-format json to train on")
    names = list(cfg.DATASETS.TRAIN)
    return build_clip_dataset(cfg, names if len(names) > 1 else names[0], is_train=True)


def build_model(cfg: Any, source: str = "the config") -> nn.Module:
    """SPVISModel for cfg.STAGE with MODEL.BACKBONE.PRETRAINED loaded (when set) and everything outside the
    stage's own module frozen. MODEL.WEIGHTS (the previous stage) is loaded by the trainer."""
    from spvis.checkpoints.pretrained import load_pretrained
    from spvis.engine.optim import freeze_for_stage
    from spvis.modeling.meta_arch import build_model as build_spvis_model

    model = build_spvis_model(cfg, source)
    load_pretrained(model, cfg)
    freeze_for_stage(model, cfg.STAGE)
    return model


def build_evaluator(cfg: Any, ctx: Any) -> Any:
    """Periodic evaluation on DATASETS.TEST when that split is set, else None."""
    if not cfg.DATASETS.TEST:
        return None
    from spvis.engine.eval_hook import build_eval_hook

    return build_eval_hook(cfg, ctx)


def _say(text: str) -> None:
    print(f"spvis train: {text}", file=sys.stderr, flush=True)


def check_train_frames(dataset: Any, *, allow_truncated: bool, say: Callable[[str], None] | None = None) -> None:
    """Every training frame file checked from its header and end marker before the first step (a bad frame is a
    one-line error naming it); with ``allow_truncated`` videos end before their first bad frame, each said. A
    dataset without ``check_frames`` has no frame files to check (clips generated in memory)."""
    check = getattr(dataset, "check_frames", None)
    for note in check(allow_truncated=allow_truncated) if check is not None else []:
        if say is not None:
            say(f"warning: {note}")


def check_solver(cfg: Any, world_size: int) -> None:
    """The solver settings the trainer would refuse (batch split, schedule), checked before OUTPUT_DIR is made
    or its log opened: a refused run leaves no files (found by the fuzz suite: SOLVER.MAX_ITER=0 left log.txt)."""
    from spvis.engine.schedule import check_schedule
    from spvis.engine.trainer import BatchPlan

    BatchPlan.from_config(cfg, world_size)
    check_schedule(cfg)


def train_main(config: str | Path, overrides: Sequence[str] = (), *, resume: bool = False,
               overwrite: bool = False, allow_truncated: bool = False) -> int:
    """Train in this process (one rank of torchrun, or alone); returns the exit code (128 + signal when
    a signal stopped the run after its checkpoint). Every rank refuses a used OUTPUT_DIR; only rank 0, the one
    that writes there, removes an earlier run's files under ``overwrite``."""
    from spvis.config import load_config
    from spvis.engine.distributed import init_distributed, shutdown_distributed
    from spvis.engine.run_dir import prepare_output_dir
    from spvis.engine.trainer import Trainer, configure_threads, setup_reproducibility

    import torch

    from spvis.engine.train_setup import (TeeStream, check_dataset_files, describe_data, describe_start,
                                          fit_clips_per_device, open_log)

    cfg = load_config(config, list(overrides))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cfg.merge_overrides(fit_clips_per_device(cfg, world, command=f"spvis train --config {config}"))
    check_solver(cfg, world)
    check_dataset_files(cfg)
    prepare_output_dir(cfg.OUTPUT_DIR, resume=resume, overwrite=overwrite,
                       remove=int(os.environ.get("RANK", "0")) == 0, say=_say)
    ctx = init_distributed(cfg.MODEL.DEVICE)
    log = open_log(cfg, ctx)
    try:
        configure_threads(ctx, int(cfg.SOLVER.CPU_THREADS))
        if ctx.is_main:
            print(describe_start(cfg, config, ctx, resume=resume, threads=torch.get_num_threads()), file=log,
                  flush=True)
        setup_reproducibility(cfg)
        dataset = build_train_dataset(cfg)
        if ctx.is_main:
            print(describe_data(cfg, dataset), file=log, flush=True)
        check_train_frames(dataset, allow_truncated=allow_truncated,
                           say=(lambda text: print(f"spvis train: {text}", file=log, flush=True))
                           if ctx.is_main else None)
        if isinstance(log, TeeStream):
            log.open_file()  # the checks passed: OUTPUT_DIR/log.txt from here on, with the lines above
        model = build_model(cfg, str(config))
        evaluator = build_evaluator(cfg, ctx)
        result = Trainer(cfg, model, dataset, ctx, evaluator=evaluator, resume=resume, log_stream=log).train()
        if result.stopped_by != "max_iter":
            return 128 + int(getattr(signal, result.stopped_by))
        return 0
    finally:
        if log is not sys.stderr:
            log.close()
        shutdown_distributed()


def train(config: str | Path, overrides: Sequence[str] = (), resume: bool = False, num_processes: int = 1, *,
          overwrite: bool = False, allow_truncated: bool = False) -> int:
    """Train the stage named by the config's STAGE; ``num_processes`` > 1 starts that many local DDP processes
    (one per GPU, or gloo on CPU). Returns the exit code (0 when MAX_ITER was reached).

    An OUTPUT_DIR holding another run is refused before any work unless ``resume`` (continue it) or
    ``overwrite`` (remove that run's own files first, listing them) is given. A missing, empty, cut, corrupt or
    mis-sized training frame is an error before the first step unless ``allow_truncated`` (its video then ends
    before it)."""
    from spvis.config import load_config
    from spvis.engine.run_dir import prepare_output_dir
    from spvis.engine.schedule import check_schedule

    from spvis.engine.train_setup import check_dataset_files, fit_clips_per_device

    cfg = load_config(config, list(overrides))  # fail fast on bad keys before starting processes
    if num_processes < 1:
        raise SpvisError(f"num_processes (--num-gpus) must be at least 1, got {num_processes}")
    check_schedule(cfg)
    check_dataset_files(cfg)
    if num_processes == 1:
        return train_main(config, overrides, resume=resume, overwrite=overwrite, allow_truncated=allow_truncated)
    if "WORLD_SIZE" in os.environ:
        raise SpvisError("--num-gpus cannot be combined with torchrun (torchrun already sets the processes)")
    fitted = fit_clips_per_device(cfg, num_processes, command=f"spvis train --config {config}")
    if fitted:
        print(f"spvis train: {fitted[0]} (was {cfg.SOLVER.CLIPS_PER_DEVICE}) so that the global batch of "
              f"{cfg.SOLVER.IMS_PER_BATCH} splits over {num_processes} processes; same batch, more accumulation "
              f"steps", file=sys.stderr, flush=True)
    prepare_output_dir(cfg.OUTPUT_DIR, resume=resume, overwrite=overwrite, say=_say)  # before processes start
    return _launch_local(str(config), [*overrides, *fitted], resume, num_processes, allow_truncated)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(local_rank: int, world_size: int, port: int, config: str, overrides: list[str], resume: bool,
            allow_truncated: bool = False) -> None:
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    try:
        code = train_main(config, overrides, resume=resume, allow_truncated=allow_truncated)
    except SpvisError as exc:
        print(f"spvis train (rank {local_rank}): error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    if code:
        raise SystemExit(code)


def _launch_local(config: str, overrides: list[str], resume: bool, n: int, allow_truncated: bool = False) -> int:
    import torch.multiprocessing as mp

    try:
        mp.start_processes(_worker, args=(n, _free_port(), config, overrides, resume, allow_truncated), nprocs=n,
                           join=True, start_method="spawn")
    except mp.ProcessExitedException as exc:
        if exc.exit_code == 2:
            raise SpvisError(f"training process {exc.error_index} failed (see its error above)") from None
        if exc.exit_code and exc.exit_code > 128:
            return int(exc.exit_code)
        raise SpvisError(f"training process {exc.error_index} exited with code {exc.exit_code}") from None
    return 0
