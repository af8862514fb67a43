"""The fuzz suite's worker: a child forked from the test process that runs ``spvis`` command lines one by one.

Why a separate process: a case may allocate without bound, hang, or change process-wide state (threads,
deterministic kernels, signal handlers); here its memory is capped (RLIMIT_AS) and the parent kills the child and
forks a new one when a case overruns its time, while the pytest process stays clean. Why forked: the child starts
with torch and spvis already imported (a fresh interpreter would spend seconds importing them), as DataLoader
workers do.

Protocol: one json object per line on the request pipe ``{"argv", "cwd", "stdout", "stderr"}``; the answer, one
json line on the answer pipe, is ``{"code", "crash", "maxrss_mb", "start_rss_mb"}``: the exit code, or the traceback of an
exception that escaped ``spvis.cli.main.main``. The case's fd 1 and fd 2 (Python and C output alike) go to the
named files.
"""

from __future__ import annotations

import json
import os
import resource
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


def serve(requests: int, answers: int, memory_gb: float) -> None:
    """Answer cases until the request pipe closes (runs in the forked child; never returns to pytest)."""
    import torch

    from spvis.cli.main import main as spvis_main

    reader = os.fdopen(requests, "r")
    writer = os.fdopen(answers, "w", buffering=1)
    # pytest's capture replaced sys.stdout/err with its own files: write to fd 1 and 2 again
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    limit = _vm_bytes() + int(memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    _reset_process_state(torch)
    start_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the fork inherits pytest's
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


def fork_worker(memory_gb: float) -> tuple[int, int, int]:
    """(pid, request fd, answer fd) of a new worker child."""
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: serve, then leave without running any of pytest's exit handlers
        code = 0
        try:
            os.close(req_w)
            os.close(ans_r)
            serve(req_r, ans_w, memory_gb)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(req_r)
    os.close(ans_w)
    return pid, req_w, ans_r
