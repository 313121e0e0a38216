"""Dropout with its mask drawn as uniform floats: the same distribution as ``nn.Dropout``, faster on CPU.

PyTorch's CPU dropout draws its mask with ``bernoulli_``, about 2.5x slower than drawing
uniforms and comparing (4.8 against 1.8 ms for a [140, 14, 256] batch on a 2-core machine,
where three dropouts run per training step). Each element is kept with probability
1 - p (``u >= p`` for ``u`` uniform in [0, 1)) and scaled by 1 / (1 - p), as ``nn.Dropout``
does; the random stream differs, so the masks are not the same ones.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class Dropout(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"
