"""The files a training run owns in OUTPUT_DIR, so that a new run never silently destroys an earlier one.

``spvis train`` writes, and only these: checkpoints ``model_<7 digits>.pth``, ``last_checkpoint``,
``model_final.safetensors`` + ``model_final.yaml``, ``metrics.jsonl``, ``config.yaml``, ``env.json``, ``log.txt``
(what it printed), TensorBoard ``events.out.tfevents.*`` files, and the hidden temporaries of its atomic writes
(``.<one of these names>.*``). A folder holding a checkpoint, ``last_checkpoint``, final weights, a non-empty
``metrics.jsonl`` or event files holds a run: training there needs ``resume`` (continue it) or ``overwrite``
(remove exactly the files above; anything else in the folder stays). ``config.yaml`` / ``env.json`` / ``log.txt``
alone (a run that stopped before its first logged step) are not a run worth keeping: a new run replaces them, as
it always did (the log is appended to).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from spvis.engine.checkpointing import FINAL_WEIGHTS_NAME, LAST_CHECKPOINT_FILE
from spvis.engine.logging_utils import METRICS_FILE, RUN_INFO_FILES
from spvis.engine.train_setup import LOG_NAME
from spvis.errors import SpvisError

FINAL_CONFIG_NAME = Path(FINAL_WEIGHTS_NAME).with_suffix(".yaml").name
# Files whose presence means "a run is here" (anchored regexes on the file name).
RUN_MARKERS = (r"model_\d{7}\.pth", re.escape(LAST_CHECKPOINT_FILE), re.escape(FINAL_WEIGHTS_NAME),
               re.escape(FINAL_CONFIG_NAME), re.escape(METRICS_FILE), r"events\.out\.tfevents\..+")
# Every file training writes: the markers, the run information, and hidden temporaries of any of them.
_VISIBLE = RUN_MARKERS + tuple(re.escape(name) for name in (*RUN_INFO_FILES, LOG_NAME))
_RUN_FILE = re.compile(r"^(?:" + "|".join(_VISIBLE) + r")$")
_TEMP_FILE = re.compile(r"^\.(?:" + "|".join(_VISIBLE) + r")\.[^/]+$")  # .<name>.<random><suffix> (atomic_io)
_MARKER = re.compile(r"^(?:" + "|".join(RUN_MARKERS) + r")$")


def run_files(output_dir: str | Path) -> list[Path]:
    """Every file in ``output_dir`` that training writes (sorted by name); [] when the folder does not exist."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.is_file() and (_RUN_FILE.match(p.name) or _TEMP_FILE.match(p.name)))


def holds_a_run(output_dir: str | Path) -> list[Path]:
    """The files that show ``output_dir`` holds a training run (an empty metrics.jsonl does not count)."""
    marks = [p for p in run_files(output_dir) if _MARKER.match(p.name)]
    return [p for p in marks if p.name != METRICS_FILE or p.stat().st_size > 0]


def prepare_output_dir(output_dir: str | Path, *, resume: bool, overwrite: bool, remove: bool = True,
                       say: Callable[[str], None] = print) -> list[Path]:
    """Refuse, before any work, to train into a folder holding another run unless ``resume`` or ``overwrite``.

    With ``overwrite`` (and ``remove``: the process that owns the folder, rank 0) the run's own files are deleted
    and listed through ``say``; returns the deleted paths. Anything else in the folder is left alone.
    """
    if resume and overwrite:
        raise SpvisError("--resume and --overwrite contradict each other: continue the run in OUTPUT_DIR, or "
                         "replace it, not both")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise SpvisError(f"OUTPUT_DIR {out} is a file, not a folder")
    found = holds_a_run(out)
    if not found or resume:
        return []
    if not overwrite:
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise SpvisError(f"OUTPUT_DIR {out} holds another training run ({names}); pass --resume to continue it "
                         f"or --overwrite to replace it (removes only that run's files), or choose another OUTPUT_DIR")
    if not remove:
        return []
    removed = run_files(out)
    for path in removed:
        path.unlink(missing_ok=True)
    say(f"--overwrite: removed {len(removed)} files of the earlier run in {out}: "
        + ", ".join(p.name for p in removed))
    return removed
