"""Choosing the torch device named by a ``*.device`` param."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from .errors import ParamError


def nvidia_gpu_present() -> bool:
    """Whether the machine has an NVIDIA GPU, whatever torch was built for."""
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """``auto`` takes CUDA, then MPS, then CPU; a named device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        if torch.version.cuda is None and nvidia_gpu_present():  # say so: training there is far slower
            print(f"warning: {key} auto: running on the CPU, though this machine has an NVIDIA GPU: this torch "
                  f"({torch.__version__}) is a CPU build; install a CUDA build of torch into .venv, then "
                  "make run TORCH=", file=sys.stderr)
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParamError(key, name, "CUDA is not available on this machine (or this torch is a CPU build); use auto or cpu")
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ParamError(key, name, f"this machine has {torch.cuda.device_count()} CUDA device(s); use cuda:0..")
        return torch.device(name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ParamError(key, name, "MPS is not available on this machine; use auto or cpu")
        return torch.device("mps")
    raise ParamError(key, name, "use auto, cpu, cuda, cuda:N or mps")


def check_ranks(device: str, nproc: int, gpus: int | None = None) -> None:
    """Before starting ``nproc`` training processes on ``device`` (``train.device``): on CUDA each
    rank takes a GPU of its own (cuda:LOCAL_RANK), so there must be that many, and a device that
    names one GPU (cuda:N) cannot hold them all. ``gpus``: how many are visible (default: count)."""
    if nproc <= 1 or device in ("cpu", "mps"):
        return
    gpus = torch.cuda.device_count() if gpus is None else gpus
    if gpus == 0:
        return  # auto: the ranks train on the CPU (gloo); cuda: resolve_device says there is none
    if device.startswith("cuda:"):
        raise ParamError("train.device", device, f"with train.nproc {nproc} each rank takes a GPU of its own "
                         "(cuda:0, cuda:1, ...): use cuda or auto, and CUDA_VISIBLE_DEVICES to choose the GPUs")
    if nproc > gpus:
        raise ParamError("train.nproc", nproc, f"each rank trains on a GPU of its own and this machine has {gpus}: "
                         f"use at most {gpus}, or train.device: cpu")


class OnHost:
    """A scalar tensor's value, copied to the host without waiting: the copy starts now, and
    :meth:`value` waits only for the work queued before it (on the CPU: nothing to wait for)."""

    def __init__(self, value: torch.Tensor) -> None:
        self._event = None
        if value.device.type == "cuda":
            self._host = value.detach().to("cpu", non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = value.detach()

    def value(self) -> float:
        if self._event is not None:
            self._event.synchronize()
        return float(self._host)


def on_host(value: torch.Tensor) -> torch.Tensor:
    """``value`` copied to the host, waiting for it: the one wait per step a search makes (named,
    so that a test can count them)."""
    return value.cpu()
