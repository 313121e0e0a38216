"""Data-parallel training with PyTorch's DistributedDataParallel, launched by ``torchrun``.

``train.nproc: N`` makes the train stage start itself again under ``torchrun`` with N
processes (ranks). Every rank builds the same length-bucketed batches from the same seed
and takes its own slice of each one, so every step still sees one bucket of similar
lengths, split across ranks; gradients are averaged by DDP. Only rank 0 writes checkpoints,
the bundle, metrics and MLflow records. Backend: nccl on CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the ranks (rank 0 of 1 when not distributed), and the device its
    exchanges go through (nccl takes CUDA tensors only; gloo the CPU's)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of one batch: every world-th item, starting at its rank."""
        return list(items[self.rank::self.world])

    def summed(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over all ranks (every rank gets the sum), on this group's exchange
        device; the host does not wait for it (one rank: ``value`` itself)."""
        if not self.distributed:
            return value
        total = value.to(self.device, dtype=torch.float64, copy=True)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def run_under_torchrun(nproc: int, module: str, module_args: Sequence[str] = ()) -> int:
    """Start ``python -m module MODULE_ARGS`` as ``nproc`` ranks on this machine; return torchrun's exit status.

    For several machines, run ``torchrun --nnodes … --rdzv-endpoint … -m module`` on each
    yourself: a stage already under torchrun does not start it again."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", module, *module_args]
    # If this process is killed, torchrun is told to stop (it then stops its ranks).
    return subprocess.call(command, preexec_fn=lambda: die_with_parent(signal.SIGTERM))


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: have the kernel send ``sig`` to this process when its parent dies, so a killed
    launcher or torchrun never leaves ranks running on their own (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def join(device: torch.device) -> ProcessGroup:
    """Join the process group torchrun set up (a no-op outside torchrun)."""
    if not launched_by_torchrun():
        return ProcessGroup()
    die_with_parent()  # a rank never outlives its torchrun
    exchange = torch.device("cpu")
    if device.type == "cuda":
        exchange = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(exchange)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ProcessGroup(dist.get_rank(), dist.get_world_size(), exchange)


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
