"""CPU threads for inference and evaluation (``--threads``): an explicit count, else a measured default.

torch starts one thread per core. On a machine whose cores are also busy with something else (another job,
video decoding, the overlay writer) those threads wait on each other: 6 frames of 1080p video took 18.6 s with
the default and 6.0 s with one thread on the shared 2-core development machine (issue 35; README, "Threads").
The default is therefore one core fewer than the machine has (at least 1, at most 8), unless
``$OMP_NUM_THREADS`` says otherwise.
"""

from __future__ import annotations

import os

MAX_DEFAULT_THREADS = 8  # beyond this, per-frame inference of one video gains little on CPU


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """$OMP_NUM_THREADS when set to a positive integer, else cores - 1 clamped to [1, 8]."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(available_cores() - 1, MAX_DEFAULT_THREADS))


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` torch (and OpenCV) threads, the default when None; returns the count set."""
    import torch

    count = int(threads) if threads else default_threads()
    torch.set_num_threads(count)
    try:
        import cv2

        cv2.setNumThreads(count)
    except ImportError:  # OpenCV is optional here
        pass
    return count
