"""Word dropout: during training, hide random input tokens behind ``<unk>``.

With ``train.word_dropout`` = p > 0, each training batch replaces every real token of the
source and of the decoder's input (the gold previous tokens) by ``<unk>`` with probability p,
independently. The model then cannot lean on any single input token, a regularizer for small
corpora (Sennrich and Zhang 2019, "Revisiting Low-Resource Neural Machine Translation", drop
whole words in the same spirit). What the model is trained to predict (the gold tokens) is
never touched, nor are ``<s>``, ``</s>`` and padding. Validation, decoding and export see the
inputs as they are.

The masks come from PyTorch's generator, whose state every checkpoint saves, so a run resumed
mid-epoch draws the same masks as one that never stopped.
"""
from __future__ import annotations

import torch

from ..core.token_ids import EOS_ID, UNK_ID
from ..data.batching import Batch


def hide_tokens(ids: torch.Tensor, p: float) -> torch.Tensor:
    """``ids`` with each real token (an id above ``</s>``) replaced by ``<unk>`` with probability ``p``."""
    hidden = (torch.rand(ids.shape, device=ids.device) < p) & (ids > EOS_ID)
    return ids.masked_fill(hidden, UNK_ID)


def drop_words(batch: Batch, p: float) -> Batch:
    """The batch with word dropout on its source and decoder input; the gold targets unchanged."""
    if p == 0.0:
        return batch
    return Batch(hide_tokens(batch.src, p), batch.src_lengths, hide_tokens(batch.prev_tokens, p), batch.gold,
                 batch.tgt_lengths)
