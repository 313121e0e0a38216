"""Faster ways to compute what the model in :mod:`seq2seq.model` defines, as variants of it chosen
when the model is built (:func:`build_model`, :mod:`.variants`).

Each computes the same thing as the reference (up to float rounding, or, for dropout, with
masks drawn from the same distribution) and is tested against it in float64, outputs and
gradients. The CPU ones were written for and measured on CPUs only (docs/performance.md):
on a GPU, cuDNN runs whole sequences and PyTorch's own kernels need no host synchronisation.

* :mod:`.variants`: the model's variants and :func:`build_model`;
* :mod:`.unrolled`: all teacher-forced steps of a step-by-step decoder (Bahdanau attention
  or input feeding) as one autograd function with a hand-written backward;
* :mod:`.dropout`: dropout whose mask is drawn as uniform floats;
* :mod:`.fused_loss`: the output projection and cross-entropy as one function, one logits buffer;
* :mod:`.allocator`: glibc keeps freed memory for the next batch;
* :mod:`.kernel_cache`: oneDNN keeps a few kernels, not one per shape seen (memory of bf16 training).
"""
from __future__ import annotations

from .variants import build_model

__all__ = ["build_model"]
