"""The one place DDP lives (docs/practices.md, nanoGPT's practice).

Under ``torchrun`` the environment names this process's rank and the world; without it the
trainer runs as a world of one. CPU uses the gloo backend, CUDA nccl; the model code never
knows which. Collectives wait ``timeout_s`` (``--dist-timeout``) for a slow or dead rank before
failing, instead of torch's default (10 minutes for nccl, 30 for gloo): long enough for a
first-batch decode or a checkpoint write on a shared filesystem, short enough that a dead node
does not hold the job for hours.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from gaia.training.train_options import DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class World:
    rank: int
    local_rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1




def init_world(device: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """Join the process group torchrun set up (if any) and pick this process's device;
    ``timeout_s``: how long a collective waits for the other ranks."""
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(
            f"--dist-timeout must be a finite positive number of seconds, not {timeout_s}")
    rank = int(os.environ.get("RANK", 0))
    size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    chosen = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(chosen)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo",
                                timeout=timedelta(seconds=timeout_s))
    return World(rank=rank, local_rank=local_rank, size=size, device=chosen)


def sum_over_world(values: dict[str, float], world: World) -> dict[str, float]:
    """Add counts over ranks (every rank must pass the same names)."""
    if not world.distributed or not values:
        return values
    names = sorted(values)
    tensor = torch.tensor([float(values[n]) for n in names], dtype=torch.float64,
                          device=world.device)
    dist.all_reduce(tensor)
    return dict(zip(names, tensor.tolist(), strict=True))


def mean_over_world(values: dict[str, float], world: World) -> dict[str, float]:
    """Average logged scalars over ranks (for logging only; gradients sync through DDP)."""
    if not world.distributed:
        return values
    return {name: value / world.size for name, value in sum_over_world(values, world).items()}


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        # Every rank reaches the end before any tears its group down: a rank still talking
        # to the store that a finished rank 0 hosted aborts at exit ("terminate called
        # without an active exception", seen once under load in the 2-process resume test).
        # Not when leaving on an error (called from a ``finally``): the other ranks may never
        # come, and the error must surface rather than wait out the group's timeout.
        if sys.exc_info()[0] is None:
            dist.barrier()
        dist.destroy_process_group()


def wrap(module: nn.Module, world: World) -> nn.Module:
    """``module`` on this process's device, inside DDP when there is more than one process."""
    module = module.to(world.device)
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the module itself)."""
    return getattr(module, "module", module)


def no_sync(module: nn.Module, world: World, sync: bool):
    """Skip DDP's gradient all-reduce unless ``sync`` (accumulation: sync the last
    micro-batch only)."""
    if sync or not world.distributed:
        return contextlib.nullcontext()
    return module.no_sync()
