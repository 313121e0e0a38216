"""Bound the caches of the oneDNN kernels that bf16 training on a CPU builds, one per tensor shape.

On a CPU, PyTorch runs bf16 products and recurrent layers through oneDNN, by way of its ideep
layer. Both keep every kernel ("primitive") they build, up to 1,024 each by default, and a kernel
is built for one shape: batches of new lengths build new ones, each holding what it needs for its
shape (its weights reordered into its layout, its scratch memory). Training on batches of every
length keeps filling both caches for tens of epochs. Five epochs of the best Multi30k en->de recipe
(bf16, 7.9 M parameters) on a 2-core AMD EPYC: peak memory 2.77 GiB and still growing with both
caches at 1,024; 1.01 GiB with 16 each, the same weights bit for bit (a kernel built again
computes what the evicted one did), and 12% more target tokens/s, not less: building a kernel costs
far less than the step that needs it (docs/performance.md, "Memory of bf16 training on a CPU").

The capacities are environment variables that oneDNN and ideep read once, when they build their
first kernel: this sets them for the process before training starts, unless the user has set them.
"""
from __future__ import annotations

import os

CAPACITY = 16  # kernels kept by each cache
VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY",  # oneDNN's own cache
             "LRU_CACHE_CAPACITY")  # ideep's (PyTorch's layer over oneDNN)


def bound_kernel_caches(capacity: int = CAPACITY) -> dict[str, str]:
    """Set both caches' capacity to ``capacity`` for this process where the environment does not
    already name one; returns the values in force. Takes effect only if no oneDNN kernel has been
    built yet in this process (they are read once): call it before the first bf16 step."""
    for name in VARIABLES:
        os.environ.setdefault(name, str(capacity))
    return {name: os.environ[name] for name in VARIABLES}
