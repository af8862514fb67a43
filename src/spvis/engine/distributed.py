"""Process-group setup for torchrun (gloo on CPU, NCCL on GPU) and the few collectives training needs.

A single process (no ``WORLD_SIZE`` in the environment) runs without a process group; every helper then
degrades to the identity, so the trainer has one code path.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from spvis.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda:<local_rank> when CUDA exists, else cpu; ``cuda`` -> cuda:<local_rank>."""
    name = name.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"config key MODEL.DEVICE is {name!r} but CUDA is not available on this machine")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    raise ConfigError(f"config key MODEL.DEVICE must be cpu, cuda, cuda:N or auto, got {name!r}")


def init_distributed(device_name: str = "auto", *, timeout_s: float = 1800.0) -> DistContext:
    """Join the torchrun process group when launched by torchrun; a plain single-process context otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def any_rank_true(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is set on at least one rank (used to stop every rank together on a signal)."""
    if not (dist.is_available() and dist.is_initialized()):
        return bool(flag)
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average scalar logs over ranks, so the main process prints the global batch's losses."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return dict(values)
    names = sorted(values)
    packed = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    packed /= dist.get_world_size()
    return {n: float(v) for n, v in zip(names, packed.tolist())}


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` on every rank (results of sharded evaluation; our own processes only)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(items: list[Any], rank: int, world_size: int) -> list[Any]:
    """The items this rank handles: every ``world_size``-th one starting at ``rank``."""
    return items[rank::world_size]
