"""tanh computed as 2 sigmoid(2x) - 1 where that is faster.

On the CPUs this project is measured on (x86, AVX2), PyTorch's ``tanh`` costs about 1.8 ns per
element on a [150, 256] tensor and twice that into a strided output, against 0.5 ns for
``sigmoid``: a recurrent step computes three tanh (the LSTM's candidate, its cell output and
the attentional features), on tensors of that size, once per step. The identity gives the
same values up to float rounding (an absolute error of about one float32 ulp of 1).

Only for CPU tensors that autograd does not track: on a GPU the four kernels would cost more
than one, and under autograd ``torch.tanh``'s own backward is the cheaper one.
"""
from __future__ import annotations

import torch
from torch import Tensor


def tanh(x: Tensor, out: Tensor | None = None) -> Tensor:
    """``torch.tanh(x, out=out)``."""
    if x.device.type != "cpu" or (x.requires_grad and torch.is_grad_enabled()):
        return torch.tanh(x) if out is None else torch.tanh(x, out=out)
    doubled = torch.sigmoid(x * 2)
    if out is None:
        return doubled.mul_(2).sub_(1)
    return torch.mul(doubled, 2, out=out).sub_(1)


def tanh_from_doubled_(doubled: Tensor, out: Tensor | None = None) -> Tensor:
    """tanh(x) from ``doubled`` = 2x, overwriting ``doubled`` (for a caller whose product
    already came out doubled: its weights scaled by 2)."""
    if doubled.device.type != "cpu":
        return torch.tanh(doubled.mul_(0.5)) if out is None else torch.tanh(doubled.mul_(0.5), out=out)
    doubled.sigmoid_()
    if out is None:
        return doubled.mul_(2).sub_(1)
    return torch.mul(doubled, 2, out=out).sub_(1)
