"""CPU fast paths: faster ways to compute what the model in :mod:`seq2seq.model` defines.

They were written for and measured on CPUs only (docs/performance.md): on any other device
:func:`plug_in` leaves the model as the reference defines it, where cuDNN runs whole sequences
and PyTorch's own kernels (fused dropout, cross-entropy) need no host synchronisation.

Each one computes the same thing as the plain model (up to float rounding, or, for dropout,
with masks drawn from the same distribution) and is tested against it. The model never
imports them; training and decoding plug them in with :func:`plug_in`.

* :mod:`.unrolled`: all teacher-forced steps of a step-by-step decoder (Bahdanau attention
  or input feeding) as one autograd function with a hand-written backward;
* :mod:`.additive_scores`: Bahdanau's scores with tanh computed through sigmoid;
* :mod:`.dropout`: dropout whose mask is drawn as uniform floats;
* :mod:`.fused_loss`: the output projection and cross-entropy as one function, one logits buffer;
* :mod:`.activations`: tanh as 2 sigmoid(2x) - 1 (inside :mod:`.unrolled`);
* :mod:`.allocator`: glibc keeps freed memory for the next batch.
"""
from __future__ import annotations

import torch
from torch import nn

from ..model.attention import BahdanauAttention
from ..model.seq2seq import Seq2Seq
from .additive_scores import additive_scores_by_sigmoid
from .dropout import Dropout
from .unrolled import UnrolledSteps


def plug_in(model: Seq2Seq, device: torch.device | str = "cpu") -> Seq2Seq:
    """Plug the fast paths into ``model`` (in place; returned for convenience) if it is to run
    on the CPU (``device``); elsewhere return it unchanged."""
    if torch.device(device).type != "cpu":
        return model
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p).train(child.training))
    model.decoder.unrolled = UnrolledSteps()
    if isinstance(model.decoder.attention, BahdanauAttention):
        model.decoder.attention.scores = additive_scores_by_sigmoid
    return model
