"""Attention: each decoder step looks back at every encoder state and mixes them into a context.

The encoder states are kept, with their keys projected once per batch, in a :class:`Memory`;
a step scores its query against the keys, turns the scores into weights with a softmax over
the real source tokens, and mixes the encoder states with those weights into the context
vector c_t = sum_j a_tj s_j.

Shapes: N memory entries (source sentences), K decoder rows per entry (beam search's
beams; 1 elsewhere), T steps, S source length, D encoder output size, H decoder hidden
size, A Bahdanau's attention size, G gate rows of the decoder's recurrence.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn


@dataclass
class Memory:
    """What the decoder may look at, computed once per batch: N entries (one per source sentence).

    keys: [N, S, A], what attention scores (None without attention); states: [N, S, D], the
    encoder states s_j, the values attention mixes into the context vector c_t = sum_j a_j s_j
    (None without attention); mask: [N, S], True at real tokens. The decoder may run
    K = rows / N rows per entry, one after the other (beam search's K beams of a sentence
    read its one entry instead of K copies of it).
    """

    keys: Tensor | None
    states: Tensor | None
    mask: Tensor

    def select(self, index: Tensor) -> "Memory":
        """Pick entries ``index`` (with K rows per entry, the rows of those entries)."""
        picked = {field.name: None if getattr(self, field.name) is None
                  else getattr(self, field.name).index_select(0, index) for field in fields(self)}
        return replace(self, **picked)

    def by_entry(self, x: Tensor) -> Tensor:
        """[N * K, T, Y] (decoder rows) -> [N, K * T, Y] (the rows of each entry together)."""
        return x.reshape(self.mask.size(0), -1, x.size(-1))

    def mix(self, weights: Tensor, values: Tensor) -> Tensor:
        """Attention weights [N * K, T, S] -> the weighted sums of ``values`` [N, S, X], [N * K, T, X]."""
        mixed = torch.bmm(self.by_entry(weights), values)
        return mixed.view(weights.size(0), weights.size(1), -1)

    def context(self, weights: Tensor) -> Tensor:
        """The context vectors c_t = sum_j a_tj s_j: [N * K, T, D]."""
        assert self.states is not None
        return self.mix(weights, self.states)


def attention_weights(scores: Tensor, memory: Memory, queries: Tensor) -> Tensor:
    """scores: [N, K * T, S] -> attention weights [N * K, T, S] in the shape of the queries
    [N * K, T, *]; padding gets weight 0."""
    weights = torch.softmax(scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf")), dim=-1)
    return weights.view(queries.size(0), queries.size(1), -1)


class LuongAttention(nn.Module):
    """Multiplicative attention (Luong et al. 2015), queried with the current decoder output h_t.

    ``general``: score(h_t, s_j) = h_t^T W s_j; ``dot``: h_t^T s_j. Keys (W s_j) are
    computed once per batch.
    """

    def __init__(self, query_size: int, memory_size: int, score: str = "general") -> None:
        super().__init__()
        if score == "dot" and query_size != memory_size:
            raise ValueError("dot attention needs equal query and memory sizes")
        self.key_proj = nn.Linear(memory_size, query_size, bias=False) if score == "general" else None

    def keys(self, states: Tensor) -> Tensor:
        """states: [N, S, D] -> keys [N, S, H]."""
        return states if self.key_proj is None else self.key_proj(states)

    def forward(self, queries: Tensor, memory: Memory) -> Tensor:
        """queries: [N * K, T, H] -> weights [N * K, T, S]."""
        assert memory.keys is not None
        scores = torch.bmm(memory.by_entry(queries), memory.keys.transpose(1, 2))
        return attention_weights(scores, memory, queries)


class BahdanauAttention(nn.Module):
    """Additive attention (Bahdanau et al. 2015), queried with the previous decoder state:
    score(q, s_j) = v^T tanh(W q + U s_j); the keys U s_j are computed once per batch.
    """

    def __init__(self, query_size: int, memory_size: int, hidden: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(memory_size, hidden, bias=False)
        self.query_proj = nn.Linear(query_size, hidden, bias=False)
        self.energy = nn.Linear(hidden, 1, bias=False)

    def keys(self, states: Tensor) -> Tensor:
        """states: [N, S, D] -> keys [N, S, A]."""
        return self.key_proj(states)

    def forward(self, queries: Tensor, memory: Memory) -> Tensor:
        """queries: [N * K, T, H] -> weights [N * K, T, S]."""
        assert memory.keys is not None
        projected = memory.by_entry(self.query_proj(queries))  # [N, K * T, A]
        scores = self.scores(projected, memory.keys, self.energy.weight.squeeze(0))
        return attention_weights(scores, memory, queries)

    def scores(self, projected: Tensor, keys: Tensor, v: Tensor) -> Tensor:
        """v^T tanh(W q + U s_j) for every query and source position: projected W q [N, K * T, A],
        keys U s [N, S, A], v [A] -> [N, K * T, S]."""
        return torch.matmul(torch.tanh(projected.unsqueeze(2) + keys.unsqueeze(1)), v)
