"""The fuzz suite's worker: a fresh interpreter, started by the test process, that runs ``spvis`` command lines one
by one (``python _fuzz_worker.py REQUEST_FD ANSWER_FD MEMORY_GB``).

Why a separate process: a case may allocate without bound, hang, or change process-wide state (threads,
deterministic kernels, signal handlers); here its memory is capped (RLIMIT_AS) and the parent kills the child and
starts a new one when a case overruns its time, while the pytest process stays clean. Why a fresh interpreter and
not a fork of pytest: a fork inherits the locks of whatever threads the earlier tests left running (OpenMP and
FFmpeg decoder pools); a video decode in such a child can wait on a lock no thread will ever release, so the
cases then hung only when the whole suite ran before them. The import cost (a few seconds) is paid once per
worker, and a new worker is needed only after a case that hangs or kills it.

Protocol: one json object per line on the request pipe ``{"argv", "cwd", "stdout", "stderr"}``; the answer, one
json line on the answer pipe, is ``{"code", "crash", "maxrss_mb", "start_rss_mb"}``: the exit code, or the traceback of an
exception that escaped ``spvis.cli.main.main``. The case's fd 1 and fd 2 (Python and C output alike) go to the
named files.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import traceback


def _vm_bytes() -> int:
    """This process's virtual size (VmSize) in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_process_state(torch) -> None:
    """Undo what a case may have changed process-wide, so that the next case starts like the first."""
    import signal

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(False)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)


def _run(argv: list[str], spvis_main) -> tuple[int | None, str | None]:
    """(exit code, None) of ``spvis argv``, or (None, traceback) when an exception escaped the CLI."""
    try:
        return int(spvis_main(argv) or 0), None
    except SystemExit as exc:  # argparse
        return (exc.code if isinstance(exc.code, int) else 2), None
    except BaseException:  # noqa: BLE001 (a traceback is what the suite looks for)
        return None, traceback.format_exc()


# what the commands import lazily, imported once before the first case so that no case pays for it in its time
PRELOADED = ("spvis.checkpoints.importer", "spvis.cli.main", "spvis.data.frames", "spvis.engine.inference",
             "spvis.engine.launch", "spvis.evaluation.evaluator", "spvis.data.check", "spvis.engine.streaming",
             "spvis.evaluation.results_io", "spvis.viz.overlay", "spvis.viz.video_writer")


def serve(requests: int, answers: int, memory_gb: float) -> None:
    """Answer cases until the request pipe closes."""
    import importlib

    import torch

    for name in PRELOADED:
        importlib.import_module(name)
    from spvis.cli.main import main as spvis_main

    reader = os.fdopen(requests, "r")
    writer = os.fdopen(answers, "w", buffering=1)
    # line-buffered, so that what a case printed is in its files when the case ends
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    limit = _vm_bytes() + int(memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    _reset_process_state(torch)
    start_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # torch and spvis imported
    for line in reader:
        case = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        out = os.open(case["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(case["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.chdir(case["cwd"])
        try:
            code, crash = _run(case["argv"], spvis_main)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (out, err, *saved):
                os.close(fd)
            os.chdir("/")
        _reset_process_state(torch)
        maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        writer.write(json.dumps({"code": code, "crash": crash, "maxrss_mb": maxrss_mb, "start_rss_mb": start_rss_mb})
                     + "\n")


def start_worker(memory_gb: float) -> tuple[subprocess.Popen, int, int]:
    """(process, request fd, answer fd) of a new worker: this file run by the same interpreter."""
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    process = subprocess.Popen([sys.executable, __file__, str(req_r), str(ans_w), str(memory_gb)],
                               pass_fds=(req_r, ans_w), stdin=subprocess.DEVNULL, cwd="/")
    os.close(req_r)
    os.close(ans_w)
    return process, req_w, ans_r


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
