"""Choosing the torch device named by a ``*.device`` param."""
from __future__ import annotations

import torch

from .errors import ParamError


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """``auto`` takes CUDA, then MPS, then CPU; a named device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
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
