"""Seeds and RNG states: every random draw of training is keyed so runs repeat bit for bit on CPU.

The model's own randomness (point sampling, denoising, dropout) is re-seeded before every micro-batch from
(seed, iteration, micro-batch index), so it depends neither on the number of processes nor on where a run
was resumed. RNG states are stored as tensors/ints so checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

# Large odd multipliers spread (seed, iteration, micro-batch) over the 63-bit seed space without collisions
# for any realistic run length.
_ITER_MULT = 1_000_003
_MICRO_MULT = 7_919


def derive_seed(seed: int, iteration: int, micro_batch: int = 0) -> int:
    """A deterministic 63-bit seed for one micro-batch of one optimiser step."""
    return (int(seed) * 2_654_435_761 + int(iteration) * _ITER_MULT + int(micro_batch) * _MICRO_MULT) % (2 ** 63 - 1)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def seed_micro_batch(seed: int, iteration: int, micro_batch: int) -> None:
    """Re-seed torch's global generators for one micro-batch (model-side randomness)."""
    torch.manual_seed(derive_seed(seed, iteration, micro_batch))


def enable_determinism() -> None:
    """Ask torch for deterministic kernels where it has them (warn, never fail, on ops without one)."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def capture_rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and plain ints (safe for ``torch.load(weights_only=True)``)."""
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng_state``."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["internal"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["name"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
