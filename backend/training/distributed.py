"""torch.distributed setup for ``torchrun``: gloo on CPU, nccl on GPUs; a single process without it."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessGroup:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> ProcessGroup:
    """Join the process group ``torchrun`` describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK),
    or run alone when WORLD_SIZE is absent or 1. ``device`` "auto" picks this process's GPU if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return ProcessGroup(rank, world, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, group: ProcessGroup) -> bool:
    """True on every rank when ``flag`` is true on at least one (so all ranks stop at the same step)."""
    if not group.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=group.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_floats(value: float, group: ProcessGroup) -> list[float]:
    """Every rank's ``value`` (float64), in rank order, on every rank."""
    t = torch.tensor([value], dtype=torch.float64, device=group.device)
    if not group.distributed:
        return [value]
    out = [torch.zeros_like(t) for _ in range(group.world_size)]
    dist.all_gather(out, t)
    return [float(x.item()) for x in out]
