"""The training loop: global batches made of micro-batches, AMP, clipping, checkpoints, logging, evaluation.

Batch rule (independent of the number of processes W): one optimiser step consumes the global batch of
``SOLVER.IMS_PER_BATCH`` = B clips, cut into B / c micro-batches of ``SOLVER.CLIPS_PER_DEVICE`` = c clips.
Micro-batch m of step i holds the samples i*B + m*c ... i*B + m*c + c - 1 and runs on rank m mod W; each
rank accumulates its gradients scaled by W*c/B, DDP averages over ranks, so every W yields the same update
(mean of the micro-batch losses). The model's randomness is re-seeded per (step, micro-batch), so it does
not depend on W or on where the run was resumed either.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from spvis.data.sample_order import EpochShuffle
from spvis.engine import checkpointing as ckpt
from spvis.engine.distributed import DistContext, any_rank_true, barrier, mean_over_ranks
from spvis.engine.ema import WeightEMA
from spvis.engine.logging_utils import ConsoleProgress, MetricsLog, TensorBoardLog, write_run_info
from spvis.engine.optim import build_optimizer, clip_full_model_grad
from spvis.engine.schedule import build_lr_scheduler
from spvis.engine.seeding import (capture_rng_state, enable_determinism, restore_rng_state, seed_everything,
                                  seed_micro_batch)
from spvis.errors import CheckpointError, ConfigError, SpvisError
from spvis.utils.nested import flatten_dict


# ----------------------------------------------------------------------------------------------- batches
@dataclass(frozen=True)
class BatchPlan:
    """How one global batch is split into micro-batches and spread over ranks."""

    global_batch: int
    clips_per_device: int
    world_size: int

    @classmethod
    def from_config(cls, cfg: Any, world_size: int) -> "BatchPlan":
        plan = cls(int(cfg.SOLVER.IMS_PER_BATCH), int(cfg.SOLVER.CLIPS_PER_DEVICE), int(world_size))
        plan.check()
        return plan

    def check(self) -> None:
        b, c, w = self.global_batch, self.clips_per_device, self.world_size
        if b < 1 or c < 1:
            raise ConfigError(f"config keys SOLVER.IMS_PER_BATCH and SOLVER.CLIPS_PER_DEVICE must be >= 1, got {b}, {c}")
        if b % (c * w) != 0:
            raise ConfigError(f"config key SOLVER.IMS_PER_BATCH={b} must be a multiple of SOLVER.CLIPS_PER_DEVICE "
                              f"({c}) x processes ({w}) so that every process runs the same number of micro-batches")

    @property
    def micro_batches(self) -> int:
        """Micro-batches per global batch (all ranks together)."""
        return self.global_batch // self.clips_per_device

    @property
    def local_micro_batches(self) -> int:
        """Micro-batches one rank runs per optimiser step (gradient-accumulation steps)."""
        return self.micro_batches // self.world_size

    def global_micro_index(self, rank: int, local_index: int) -> int:
        return rank + local_index * self.world_size

    def sample_ids(self, iteration: int, micro_index: int) -> list[int]:
        """Global sample counters of one micro-batch."""
        start = iteration * self.global_batch + micro_index * self.clips_per_device
        return list(range(start, start + self.clips_per_device))


class PlannedSampler(torch.utils.data.Sampler):
    """Dataset indices of this rank's micro-batches, in order, for iterations ``start .. max_iter - 1``."""

    def __init__(self, plan: BatchPlan, rank: int, *, dataset_size: int, seed: int, start_iter: int, max_iter: int):
        self.plan, self.rank = plan, rank
        self.shuffle = EpochShuffle(dataset_size, seed)
        self.start_iter, self.max_iter = start_iter, max_iter

    def __len__(self) -> int:
        return max(self.max_iter - self.start_iter, 0) * self.plan.local_micro_batches * self.plan.clips_per_device

    def __iter__(self) -> Iterator[int]:
        for iteration in range(self.start_iter, self.max_iter):
            for local in range(self.plan.local_micro_batches):
                micro = self.plan.global_micro_index(self.rank, local)
                for sample in self.plan.sample_ids(iteration, micro):
                    yield self.shuffle(sample)


def _ignore_stop_signals_in_worker(_worker_id: int) -> None:
    """Data workers ignore SIGINT and SIGTERM: Ctrl-C and ``kill -TERM -<pgid>`` reach the whole process group,
    and a worker dying first would end the main process ("DataLoader worker ... killed by signal") before it
    saves its checkpoint. The main process stops them itself once that checkpoint is written."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# ----------------------------------------------------------------------------------------------- trainer
@dataclass
class TrainResult:
    """What a run did: last iteration reached, why it stopped, and the files it left."""

    iteration: int
    stopped_by: str  # "max_iter" or the signal name
    last_checkpoint: Path | None = None
    final_weights: Path | None = None
    last_losses: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Runs one training stage of ``model`` on ``dataset`` as configured by ``cfg.SOLVER``.

    ``model(batch: list[clip dict], iteration=i, max_iter=n) -> dict[str, Tensor]`` returns weighted losses
    (summed here); the model computes them inside its forward (SPVISModel: its stage criterion), so under DDP
    the whole loss graph is built in DistributedDataParallel.forward and its gradients are all-reduced.
    ``evaluator(model, iteration) -> dict`` (optional) is called every TEST.EVAL_PERIOD and at the end.
    """

    def __init__(self, cfg: Any, model: nn.Module, dataset: torch.utils.data.Dataset, ctx: DistContext, *,
                 evaluator: Callable[[nn.Module, int], dict] | None = None, resume: bool = False,
                 log_stream: Any = None, install_signal_handlers: bool = True):
        self.cfg, self.ctx, self.dataset, self.evaluator = cfg, ctx, dataset, evaluator
        self.output_dir = Path(cfg.OUTPUT_DIR)
        self.plan = BatchPlan.from_config(cfg, ctx.world_size)
        self.max_iter = int(cfg.SOLVER.MAX_ITER)
        self.log_period = max(int(cfg.SOLVER.LOG_PERIOD), 1)
        self.log_stream = log_stream or sys.stderr
        self.install_signal_handlers = install_signal_handlers
        self._stop_signal: int | None = None

        self.model = model.to(ctx.device)
        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.start_iter = 0
        self.resumed_from: Path | None = None
        self._resumed_ema: dict | None = None
        if resume:
            self._resume()
        if self.resumed_from is None and cfg.MODEL.WEIGHTS:
            ckpt.load_initial_weights(self.model, cfg.MODEL.WEIGHTS, stage=cfg.STAGE)
        self.ema = WeightEMA(self.model, float(cfg.SOLVER.EMA_DECAY)) if cfg.SOLVER.EMA_DECAY > 0 else None
        if self.ema is not None and self._resumed_ema:
            self.ema.load_state_dict(self._resumed_ema)
        self.train_model: nn.Module = self.model
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=bool(cfg.SOLVER.FIND_UNUSED_PARAMETERS))

    # ------------------------------------------------------------------ setup
    def _amp_dtype(self) -> torch.dtype | None:
        if not self.cfg.SOLVER.AMP or self.ctx.device.type != "cuda":
            return None  # AMP is CUDA-only here; CPU runs in fp32 for exact reproducibility
        name = self.cfg.SOLVER.AMP_DTYPE
        if name == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise ConfigError("config key SOLVER.AMP_DTYPE is bfloat16 but this GPU does not support it; use float16")
        return torch.bfloat16 if name == "bfloat16" else torch.float16

    def _resume(self) -> None:
        found = ckpt.load_newest_valid_checkpoint(
            self.output_dir, on_skip=lambda bad, exc: self._say(f"--resume: skipped a damaged checkpoint: {exc}"))
        if found is None:
            self._say(f"--resume: no checkpoint in {self.output_dir}; starting from iteration 0")
            return
        path, data = found
        if data["stage"] != self.cfg.STAGE:
            raise CheckpointError(f"{path}: checkpoint of stage {data['stage']!r}, this run is stage "
                                  f"{self.cfg.STAGE!r}; use another OUTPUT_DIR or pass it as MODEL.WEIGHTS")
        ckpt.load_state_strict(self.model, data["model"], source=str(path))
        try:
            self.optimizer.load_state_dict(data["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this model ({exc})") from None
        self.scheduler.load_state_dict(data["scheduler"])
        if self.scaler is not None and data.get("scaler"):
            self.scaler.load_state_dict(data["scaler"])
        if data.get("rng"):
            restore_rng_state(data["rng"])
        self._resumed_ema = data.get("ema") or None
        self.start_iter = int(data["iteration"])
        self.resumed_from = path
        self._say(f"resumed from {path} at iteration {self.start_iter}")

    def _say(self, text: str) -> None:
        if self.ctx.is_main:
            print(text, file=self.log_stream, flush=True)

    def _data_loader(self) -> torch.utils.data.DataLoader:
        from spvis.data.clip_dataset import collate_clips

        sampler = PlannedSampler(self.plan, self.ctx.rank, dataset_size=len(self.dataset), seed=self.cfg.SEED,
                                 start_iter=self.start_iter, max_iter=self.max_iter)
        workers = int(self.cfg.DATALOADER.NUM_WORKERS)
        return torch.utils.data.DataLoader(
            self.dataset, batch_size=self.plan.clips_per_device, sampler=sampler, collate_fn=collate_clips,
            num_workers=workers, worker_init_fn=_ignore_stop_signals_in_worker if workers > 0 else None,
            persistent_workers=False, prefetch_factor=2 if workers > 0 else None)

    def evaluation_weights(self) -> contextlib.AbstractContextManager:
        """The weights evaluation and model_final use: the EMA when SOLVER.EMA_DECAY is set, else the model's."""
        return self.ema.swapped_into(self.model) if self.ema is not None else contextlib.nullcontext(self.model)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": ckpt.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": capture_rng_state(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "stage": str(self.cfg.STAGE),
            "config": self.cfg.dump(),
            # The data order is a pure function of (SEED, iteration): the iteration is the sampler state.
            "sampler": {"seed": int(self.cfg.SEED), "global_batch": self.plan.global_batch},
        }

    def save_checkpoint(self, iteration: int) -> Path | None:
        path = None
        if self.ctx.is_main:
            path = ckpt.save_training_checkpoint(self.output_dir, self.checkpoint_state(), iteration=iteration)
            ckpt.prune_checkpoints(self.output_dir, int(self.cfg.SOLVER.KEEP_CHECKPOINTS))
        barrier()
        return path

    # ------------------------------------------------------------------ signals
    @contextlib.contextmanager
    def _graceful_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM finish the current step, save a checkpoint and stop; a second SIGINT aborts."""
        import threading

        if not self.install_signal_handlers or threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_signal = signum
            self._say(f"received {signal.Signals(signum).name}: finishing this step, then saving a checkpoint")

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask the loop to stop after the current step as if ``signum`` had arrived."""
        self._stop_signal = signum

    # ------------------------------------------------------------------ one step
    def run_step(self, iteration: int, micro_batches: Iterator[list[dict]]) -> dict[str, float]:
        """One optimiser step over this rank's micro-batches; returns the averaged (local) loss values."""
        self.train_model.train()
        self.optimizer.zero_grad(set_to_none=True)
        local = self.plan.local_micro_batches
        sums: dict[str, float] = {}
        for k in range(local):
            batch = next(micro_batches)
            seed_micro_batch(self.cfg.SEED, iteration, self.plan.global_micro_index(self.ctx.rank, k))
            last = k == local - 1
            sync = contextlib.nullcontext() if last or not self.ctx.distributed else self.train_model.no_sync()
            with sync:
                with torch.autocast(self.ctx.device.type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
                    # through DDP's forward (gradient sync); the stage schedules follow the iteration passed here
                    losses = self.train_model(batch, iteration=int(iteration), max_iter=self.max_iter)
                if not isinstance(losses, dict) or not losses:
                    raise SpvisError(f"stage {self.cfg.STAGE!r}: the model returned no loss dict in training")
                total = sum(v.float() for v in losses.values())
                if not torch.isfinite(total):
                    values = {n: float(v.detach()) for n, v in losses.items()}
                    raise SpvisError(f"non-finite loss at iteration {iteration} (video ids "
                                     f"{[c.get('video_id') for c in batch]}): {values}")
                scaled = total / local
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / local
            sums["total_loss"] = sums.get("total_loss", 0.0) + float(total.detach()) / local
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        sums["grad_norm"] = clip_full_model_grad(params, float(self.cfg.SOLVER.CLIP_GRAD_NORM))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return sums

    # ------------------------------------------------------------------ the loop
    def train(self) -> TrainResult:
        """Train from ``start_iter`` to SOLVER.MAX_ITER (or until a signal); checkpoints and logs on the way."""
        cfg = self.cfg
        if self.ctx.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_run_info(self.output_dir, cfg, argv=sys.argv, world_size=self.ctx.world_size)
        metrics = MetricsLog(self.output_dir) if self.ctx.is_main else None
        if metrics is not None:
            metrics.truncate_after(self.start_iter)
        tboard = TensorBoardLog(self.output_dir, purge_step=self.start_iter) \
            if self.ctx.is_main and cfg.SOLVER.TENSORBOARD else None
        progress = ConsoleProgress(start_iter=self.start_iter, max_iter=self.max_iter, stream=self.log_stream,
                                   use_bar=None if self.ctx.is_main else False) if self.ctx.is_main else None
        result = TrainResult(iteration=self.start_iter, stopped_by="max_iter", last_checkpoint=self.resumed_from)
        period, eval_period = int(cfg.SOLVER.CHECKPOINT_PERIOD), int(cfg.TEST.EVAL_PERIOD)
        loader_iter = iter(self._data_loader())
        window_started, window_cpu, window_iter = time.perf_counter(), time.process_time(), self.start_iter
        try:
            with self._graceful_signals():
                for it in range(self.start_iter, self.max_iter):
                    lr = max(g["lr"] for g in self.optimizer.param_groups)
                    values = self.run_step(it, loader_iter)
                    done = it + 1
                    result.iteration = done
                    stop = any_rank_true(self._stop_signal is not None, self.ctx.device)
                    if done % self.log_period == 0 or done == self.max_iter or stop:
                        logged = mean_over_ranks(values, self.ctx.device)
                        result.last_losses = logged
                        now = time.perf_counter()
                        # s/iter over the iterations since the previous log line (includes data loading)
                        cpu_now = time.process_time()  # this process's CPU seconds: robust on a shared machine
                        steps = max(done - window_iter, 1)
                        entry = {"iteration": done, "lr": lr, **logged, "time": (now - window_started) / steps,
                                 "cpu_time": (cpu_now - window_cpu) / steps}
                        window_started, window_cpu, window_iter = now, cpu_now, done
                        if metrics is not None:
                            metrics.write(entry)
                            progress.update(done, entry)
                        if tboard is not None:
                            tboard.write(entry)
                    if period > 0 and done % period == 0 and done != self.max_iter and not stop:
                        result.last_checkpoint = self.save_checkpoint(done)
                    if stop:
                        result.last_checkpoint = self.save_checkpoint(done)
                        signum = self._stop_signal or signal.SIGTERM
                        result.stopped_by = signal.Signals(signum).name
                        self._say(f"stopped at iteration {done}; checkpoint {result.last_checkpoint}; "
                                  "continue with --resume")
                        return result
                    if self.evaluator is not None and eval_period > 0 and done % eval_period == 0 \
                            and done != self.max_iter:
                        self._evaluate(done, metrics, tboard, result)
            result.last_checkpoint = self.save_checkpoint(self.max_iter)
            if self.ctx.is_main:
                with self.evaluation_weights():
                    result.final_weights = ckpt.save_weights(self.output_dir / ckpt.FINAL_WEIGHTS_NAME, self.model,
                                                             cfg)
                self._say(f"final weights: {result.final_weights}")
            barrier()
            if self.evaluator is not None:
                self._evaluate(self.max_iter, metrics, tboard, result)
            return result
        finally:
            if progress is not None:
                progress.close()
            if tboard is not None:
                tboard.close()

    def _evaluate(self, iteration: int, metrics: MetricsLog | None, tboard: TensorBoardLog | None,
                  result: TrainResult) -> None:
        was_training = self.model.training
        self.model.eval()
        try:
            with self.evaluation_weights():
                scores = self.evaluator(self.model, iteration) or {}
        finally:
            self.model.train(was_training)
        result.eval_metrics = scores
        flat = {f"eval/{k}": float(v) for k, v in flatten_dict(scores, "/").items()
                if isinstance(v, (int, float)) and math.isfinite(float(v))}
        if metrics is not None and flat:
            metrics.write({"iteration": iteration, **flat})
        if tboard is not None and flat:
            tboard.write({"iteration": iteration, **flat})
        if flat:
            shown = ", ".join(f"{k[5:]} {v:.4f}" for k, v in list(flat.items())[:8])
            self._say(f"evaluation at iteration {iteration}: {shown}")




def configure_threads(ctx: DistContext, cpu_threads: int = 0) -> None:
    """CPU threads per process: SOLVER.CPU_THREADS, else the cores shared between the local processes."""
    if ctx.device.type != "cpu":
        return
    if cpu_threads > 0:
        torch.set_num_threads(cpu_threads)
    elif ctx.distributed:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(local, 1)))


def setup_reproducibility(cfg: Any) -> None:
    """Seed every generator and request deterministic kernels before the model is built."""
    seed_everything(int(cfg.SEED))
    enable_determinism()
