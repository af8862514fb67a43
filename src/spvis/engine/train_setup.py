"""What ``spvis train`` checks and says before the first step: datasets that exist, a batch that splits over
the processes, the set-up printed at once, and everything it prints also kept in ``OUTPUT_DIR/log.txt``.

Without these a run from a fresh clone stopped on a missing ``datasets/synth_train`` with no hint,
``--num-gpus 2`` with a shipped recipe failed on every rank after spawning, and nothing appeared on the
console for the first 50 seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from spvis.errors import ConfigError

LOG_NAME = "log.txt"


def _synth_hint(path: Path) -> str:
    """How to make a missing dataset of the synthetic recipes (``datasets/synth_*``, ``val_*``, ``report_*``)."""
    folder = path.parent.name
    if folder.startswith(("synth", "val_", "report_")):
        return (f"; the synthetic recipes' datasets are made by `bash scripts/make_synth_data.sh` (or one of them: "
                f"`spvis synth --out {path.parent} ...`), or train with no data on disk on freshly generated "
                f"videos: DATASETS.TRAIN=[synth:target]")
    return "; paths are relative to the folder you run spvis in"


def check_dataset_files(cfg: Any) -> None:
    """ConfigError naming the key and the file for a DATASETS.TRAIN / TEST json that does not exist."""
    for key in ("TRAIN", "TEST"):
        for name in cfg.DATASETS[key]:
            if isinstance(name, str) and name.lower().endswith(".json") and not Path(name).is_file():
                raise ConfigError(f"DATASETS.{key}: {name} not found{_synth_hint(Path(name))}")


def fit_clips_per_device(cfg: Any, processes: int, *, command: str) -> list[str]:
    """Overrides that split SOLVER.IMS_PER_BATCH evenly over ``processes`` (CLIPS_PER_DEVICE lowered to the
    largest divisor that fits: same global batch, more accumulation steps); ConfigError with the command that
    works when the batch cannot be split at all."""
    batch, clips = int(cfg.SOLVER.IMS_PER_BATCH), int(cfg.SOLVER.CLIPS_PER_DEVICE)
    if processes <= 1 or batch % (clips * processes) == 0:
        return []
    if batch % processes:
        fits = [n for n in range(2, batch + 1) if batch % n == 0 and n <= 8]
        raise ConfigError(f"SOLVER.IMS_PER_BATCH={batch} does not split over {processes} processes; run "
                          f"`{command} --num-gpus {fits[0] if fits else 1}` ({' / '.join(map(str, fits))} work) or "
                          f"set SOLVER.IMS_PER_BATCH to a multiple of {processes}")
    per_process = batch // processes
    fitted = max(n for n in range(1, min(clips, per_process) + 1) if per_process % n == 0)
    return [f"SOLVER.CLIPS_PER_DEVICE={fitted}"]


class TeeStream:
    """A text stream writing to the console and to a log file (line-buffered, appended across resumes).
    ``isatty`` is False so progress comes as plain lines, which read well in both places. Until ``open_file``
    the log lines are held in memory, so a run refused during its checks (a bad training frame) leaves no
    OUTPUT_DIR behind; ``open_file`` writes them first."""

    def __init__(self, console: TextIO, log_path: Path):
        self.console, self.log_path = console, log_path
        self.log: TextIO | None = None
        self.pending: list[str] = []

    def open_file(self) -> None:
        if self.log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = open(self.log_path, "a", encoding="utf-8", buffering=1)
            self.log.write("".join(self.pending))
            self.pending = []

    def write(self, text: str) -> int:
        self.console.write(text)
        if self.log is None:
            self.pending.append(text)
        else:
            self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.console.flush()
        if self.log is not None:
            self.log.flush()

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def describe_start(cfg: Any, config: str | Path, ctx: Any, *, resume: bool, threads: int) -> str:
    """The lines printed before anything slow: config, stage, device, processes, batch, output folder."""
    where = "resume from the newest checkpoint" if resume else (f"weights {cfg.MODEL.WEIGHTS}" if cfg.MODEL.WEIGHTS
                                                                 else "from scratch")
    device = f"{ctx.device}" + (f" ({threads} thread{'s' if threads != 1 else ''} per process)"
                                if ctx.device.type == "cpu" else "")
    return "\n".join([
        f"spvis train: stage {cfg.STAGE} from {config} ({where})",
        f"  device {device}; {ctx.world_size} process{'es' if ctx.world_size > 1 else ''}; global batch "
        f"{cfg.SOLVER.IMS_PER_BATCH} clips of {cfg.INPUT.SAMPLING_FRAME_NUM} frame(s), "
        f"{cfg.SOLVER.CLIPS_PER_DEVICE} per step per process; {cfg.SOLVER.MAX_ITER} iterations",
        f"  output {cfg.OUTPUT_DIR} (log.txt, metrics.jsonl, checkpoints, config.yaml)",
    ])


def describe_data(cfg: Any, dataset: Any) -> str:
    """One line: the training datasets and how many samples they hold."""
    names: Sequence[str] = list(cfg.DATASETS.TRAIN)
    try:
        size = f"{len(dataset):,} samples"
    except TypeError:
        size = "size unknown"
    streamed = any(str(n).startswith("synth:") for n in names)
    extra = " (generated on the fly: a new video per sample)" if streamed else ""
    return f"  data {', '.join(map(str, names))}: {size}{extra}"


def open_log(cfg: Any, ctx: Any) -> TeeStream | TextIO:
    """stderr, teed into OUTPUT_DIR/log.txt on the main process."""
    if not ctx.is_main:
        return sys.stderr
    return TeeStream(sys.stderr, Path(cfg.OUTPUT_DIR) / LOG_NAME)
