"""Training observability: console progress (iter, losses, LR, s/iter, ETA), metrics.jsonl, TensorBoard.

Only the main process logs. ``metrics.jsonl`` holds one JSON object per logged iteration; a resumed run
first drops the lines written after its checkpoint, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import datetime
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from spvis.errors import ConfigError
from spvis.utils.atomic_io import atomic_write_json, atomic_write_text

METRICS_FILE = "metrics.jsonl"
RUN_INFO_FILES = ("config.yaml", "env.json")  # written by write_run_info
_AUX_SUFFIX = re.compile(r"_\d+$")


def format_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0.0))))


class MetricsLog:
    """Append-only JSON-lines log of training scalars in ``OUTPUT_DIR/metrics.jsonl``."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / METRICS_FILE

    def truncate_after(self, iteration: int) -> None:
        """Keep only entries with ``iteration <= iteration`` (called when resuming from that checkpoint)."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill is dropped
            if isinstance(entry, dict) and int(entry.get("iteration", -1)) <= iteration:
                kept.append(line)
        atomic_write_text(self.path, "".join(k + "\n" for k in kept))

    def write(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")


class TensorBoardLog:
    """Scalars to TensorBoard event files in ``OUTPUT_DIR`` (needs the ``tensorboard`` package)."""

    def __init__(self, output_dir: str | Path, *, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except (ImportError, ModuleNotFoundError):
            raise ConfigError("config key SOLVER.TENSORBOARD is true but the 'tensorboard' package is not "
                              "installed (pip install tensorboard, or set SOLVER.TENSORBOARD=false)") from None
        self.writer = SummaryWriter(log_dir=str(output_dir), purge_step=purge_step)

    def write(self, entry: dict[str, Any]) -> None:
        step = int(entry["iteration"])
        for name, value in entry.items():
            if name != "iteration" and isinstance(value, (int, float)):
                self.writer.add_scalar(name.replace(".", "/"), value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class ConsoleProgress:
    """A tqdm bar on a terminal, plain lines otherwise; shows losses, LR, s/iter and ETA."""

    def __init__(self, *, start_iter: int, max_iter: int, use_bar: bool | None = None, stream: TextIO | None = None):
        self.start_iter, self.max_iter = start_iter, max_iter
        self.stream = stream or sys.stderr
        self.use_bar = self.stream.isatty() if use_bar is None else use_bar
        self.started = time.perf_counter()
        self.bar = None
        if self.use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=max_iter, initial=start_iter, desc="train", unit="it", file=self.stream,
                            dynamic_ncols=True)

    def seconds_per_iter(self, iteration: int) -> float:
        done = iteration - self.start_iter
        return (time.perf_counter() - self.started) / done if done > 0 else float("nan")

    def update(self, iteration: int, entry: dict[str, Any]) -> None:
        """Report the state after ``iteration`` optimiser steps."""
        spi = self.seconds_per_iter(iteration)
        eta = format_eta(spi * (self.max_iter - iteration)) if spi == spi else "?"
        # deep-supervision copies (loss_ce_0, loss_ce_1, ...) go to metrics.jsonl only; the console shows the
        # final layer's losses
        losses = {k: v for k, v in entry.items() if k.startswith("loss") and not _AUX_SUFFIX.search(k)}
        if self.bar is not None:
            self.bar.n = iteration
            self.bar.set_postfix_str(f"loss {entry.get('total_loss', float('nan')):.4f} lr {entry.get('lr', 0):.2e}",
                                     refresh=False)
            self.bar.refresh()
            return
        parts = " ".join(f"{k} {v:.4f}" for k, v in sorted(losses.items()))
        print(f"iter {iteration}/{self.max_iter}  total_loss {entry.get('total_loss', float('nan')):.4f}  {parts}  "
              f"lr {entry.get('lr', 0.0):.3e}  {spi:.3f} s/iter  ETA {eta}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def write_run_info(output_dir: str | Path, cfg: Any, *, argv: list[str], world_size: int) -> None:
    """Config and environment of the run (detectron2's job hygiene), written atomically to OUTPUT_DIR."""
    import torch

    out = Path(output_dir)
    config_name, env_name = RUN_INFO_FILES
    atomic_write_text(out / config_name, cfg.dump())
    atomic_write_json(out / env_name, {
        "argv": list(argv), "python": platform.python_version(), "torch": torch.__version__,
        "platform": platform.platform(), "world_size": world_size,
        "cuda": torch.cuda.is_available(), "threads": torch.get_num_threads(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }, indent=2)
