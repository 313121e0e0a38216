"""What ``train.precision`` means on each device, and the numerics a training run holds to.

* ``fp32``: float32 throughout; on a CUDA GPU with TF32 off (matmuls and cuDNN), so it is float32.
* ``tf32``: CUDA GPUs from Ampere on: float32 weights and activations, matmuls and cuDNN
  (recurrences included) in TF32 (10-bit mantissa products, float32 sums).
* ``bf16``: autocast to bfloat16, float32 weights and loss. On a CUDA GPU the recurrences run
  in bf16 too (:func:`seq2seq.model.recurrence.recur`; PyTorch's autocast would run them in fp16).
* ``fp16``: CUDA GPUs only: autocast to float16 with dynamic gradient scaling (``GradScaler``).
* ``auto``: the fastest of the device's candidates for this model, timed on a few batches at the
  start (CPU: fp32, bf16; CUDA: tf32, and bf16 where the GPU has it); the run says which it
  picked, and a resumed run keeps it.

``train.deterministic`` asks PyTorch for deterministic algorithms (cuDNN's included), so that
a rerun or a resumed run on one GPU gives the same weights bit for bit (at some speed); runs on
a CPU are deterministic without it. Both settings hold for the run only (:func:`numerics`).
"""
from __future__ import annotations

import contextlib
import copy
import time
from typing import Callable, Iterator, Sequence

import torch

from ..core.errors import ParamError

PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "auto")


def check_precision(precision: str, device: torch.device) -> None:
    """A one-line error where ``precision`` (train.precision) cannot mean what it says on ``device``."""
    if precision in ("tf32", "fp16") and device.type != "cuda":
        raise ParamError("train.precision", precision, f"{precision} is for CUDA GPUs and this run trains on "
                         f"{device.type}; use fp32, bf16 or auto")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ParamError("train.precision", precision, "this GPU has no bfloat16; use fp16, tf32 or auto")


def candidates(device: torch.device) -> list[str]:
    """What ``auto`` chooses among on ``device``, the most exact first (it wins a tie)."""
    if device.type == "cuda":
        return ["tf32", "bf16"] if torch.cuda.is_bf16_supported() else ["tf32"]
    if device.type == "cpu":
        return ["fp32", "bf16"]
    return ["fp32"]


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` (none for fp32 and tf32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16's gradient scaler (None for the other precisions)."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


@contextlib.contextmanager
def numerics(precision: str, deterministic: bool, device: torch.device) -> Iterator[None]:
    """TF32 as ``precision`` says and deterministic algorithms if asked, for the ``with`` block;
    PyTorch's settings as they were afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark)
    if device.type == "cuda":
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    if deterministic:  # (on CUDA the Trainer sets cuBLAS's workspace first: cuBLAS reads it once)
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[3], saved[4]


def fastest(choices: Sequence[str], device: torch.device, model: torch.nn.Module,
            step: Callable[[torch.nn.Module, str], None], rounds: int = 2, steps: int = 3
            ) -> tuple[str, dict[str, float]]:
    """The precision among ``choices`` whose training steps (``step(model, precision)``: forward and
    backward of one batch) run fastest on a copy of ``model``, and each one's seconds per step.
    Timed in alternating order (a b, b a, ...) after one warm-up step each; the random number
    generators are left as they were, so the run itself is unchanged by the measurement."""
    if len(choices) == 1:
        return choices[0], {}
    trial = copy.deepcopy(model)
    seconds = {p: 0.0 for p in choices}
    devices = [device] if device.type == "cuda" else []

    def wait() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        for p in choices:
            with numerics(p, False, device):
                step(trial, p)  # warm-up: kernels chosen, buffers allocated
        for r in range(rounds):
            for p in (choices if r % 2 == 0 else list(reversed(choices))):
                with numerics(p, False, device):
                    wait()
                    started = time.perf_counter()
                    for _ in range(steps):
                        step(trial, p)
                    wait()
                    seconds[p] += time.perf_counter() - started
    per_step = {p: s / (rounds * steps) for p, s in seconds.items()}
    return quickest(choices, per_step), per_step


def quickest(choices: Sequence[str], per_step: dict[str, float]) -> str:
    """The choice of the fewest seconds per step; of equals, the earlier (the more exact)."""
    return min(choices, key=lambda p: (per_step.get(p, 0.0), choices.index(p)))
