"""Several models as one for the search: an ensemble's step scores each token by the mean of the
models' log-probabilities (each model runs its own encoder and decoder state; the search, one
for any backend, reorders them all alike)."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..model.seq2seq import Seq2Seq
from .torch_backend import TorchBackend


class EnsembleBackend(TorchBackend):
    """Models sharing their vocabularies, on ``device``. A step's scores are the weighted mean of their
    log-probabilities (``weights``, normalised to sum to 1; equal without), read as any model's
    scores (their log-softmax is themselves up to rounding); its attention weights, with
    ``attention`` asked for, the mean of the models that attend."""

    def __init__(self, models: Sequence[Seq2Seq], device: torch.device | str,
                 weights: Sequence[float] | None = None) -> None:
        if not models:
            raise ValueError("an ensemble needs at least one model")
        sizes = {(m.src_vocab_size, m.tgt_vocab_size) for m in models}
        if len(sizes) > 1:
            raise ValueError(f"the ensemble's models have different vocabulary sizes {sorted(sizes)}")
        weights = [1.0] * len(models) if weights is None else [float(w) for w in weights]
        if len(weights) != len(models) or any(not w > 0 for w in weights):
            raise ValueError(f"an ensemble of {len(models)} models needs as many weights, each > 0: got {weights}")
        super().__init__(models[0], device)
        self.models = list(models)
        self.shares = [w / sum(weights) for w in weights]
        self.has_attention = any(m.decoder.attention is not None for m in self.models)

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Any, Any]:
        encoded = [model.encode(src, lengths) for model in self.models]
        return [memory for memory, _ in encoded], [state for _, state in encoded]

    def step(self, tokens: Tensor, state: Any, memory: Any) -> tuple[Tensor, Any, Tensor | None]:
        log_probs: Tensor | None = None
        states, attending = [], []
        for model, share, one_state, one_memory in zip(self.models, self.shares, state, memory):
            features, next_state, weights = model.decoder(tokens.unsqueeze(1), one_state, one_memory)
            step = torch.log_softmax(model.generator(features[:, -1]).float(), dim=-1)
            step = step if len(self.models) == 1 else step * share
            log_probs = step if log_probs is None else log_probs + step
            states.append(next_state)
            if weights is not None:
                attending.append(weights[:, -1].float())
        assert log_probs is not None
        mean_weights = None if not attending else torch.stack(attending).mean(0)
        return log_probs, states, mean_weights

    def select_state(self, state: Any, index: Tensor) -> Any:
        return [one.select(index) for one in state]

    def select_memory(self, memory: Any, index: Tensor) -> Any:
        return [one.select(index) for one in memory]
