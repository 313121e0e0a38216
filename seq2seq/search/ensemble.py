"""Several models as one for the search: an ensemble scores each token by the weighted mean of the
models' log-probabilities at every step.

The members are backends of one kind (PyTorch models on one device, or exported models under ONNX
Runtime) that share their vocabularies. Each runs its own encoder and decoder state; the search,
written once for any backend (:mod:`.algorithms`), reorders them all alike. A step's scores are

    score(y) = sum_m w_m log p_m(y | prefix, source),   with the weights w_m summing to 1,

used as they are (not renormalised: OpenNMT-py's and Marian's ensembles), so a hypothesis's
log-probability is the weighted mean of the members' log-probabilities of it. Its attention, when
asked for, is the mean of the members that attend.
"""
from __future__ import annotations

from typing import Any, Sequence

from .backend import Array, Backend, Host


def shares(weights: Sequence[float] | None, count: int) -> list[float]:
    """``weights`` (one per member, each > 0; None: equal) scaled to sum to 1."""
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(weights) != count or not all(w > 0 for w in weights):
        raise ValueError(f"an ensemble of {count} models needs one weight > 0 per model: got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


class Ensemble:
    """Member backends searched as one (a :class:`~.backend.Backend`). Arrays are the first member's:
    every operation on the search's own arrays is the first member's (``__getattr__``)."""

    def __init__(self, members: Sequence[Backend], weights: Sequence[float] | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one model")
        kinds = {type(m).__name__ for m in members}
        if len(kinds) > 1:
            raise ValueError(f"an ensemble's models run on one kind of backend: got {sorted(kinds)}")
        self.members = list(members)
        self.shares = shares(weights, len(self.members))
        self.has_attention = any(m.has_attention for m in self.members)
        self.free_reads = self.members[0].free_reads

    def __getattr__(self, name: str) -> Any:  # the array operations (array, full, topk, pick, host, ...)
        return getattr(self.members[0], name)

    def encode(self, src: Array, lengths: Host) -> tuple[Any, Any]:
        encoded = [m.encode(src, lengths) for m in self.members]
        return [memory for memory, _ in encoded], [state for _, state in encoded]

    def step(self, tokens: Array, state: Any, memory: Any) -> tuple[Array, Any, Array | None]:
        scores, states, attending = None, [], []
        for member, share, one_state, one_memory in zip(self.members, self.shares, state, memory):
            step_scores, next_state, weights = member.step(tokens, one_state, one_memory)
            weighted = member.log_probs(step_scores) * share
            scores = weighted if scores is None else scores + weighted
            states.append(next_state)
            if weights is not None:
                attending.append(weights)
        mean_weights = None if not attending else sum(attending[1:], attending[0]) / len(attending)
        return scores, states, mean_weights

    def log_probs(self, scores: Array) -> Array:
        return scores

    def log_probs_at(self, scores: Array, tokens: Array) -> Array:
        return self.members[0].pick(scores, tokens)

    def select_state(self, state: Any, index: Array) -> Any:
        return [m.select_state(s, index) for m, s in zip(self.members, state)]

    def select_memory(self, memory: Any, index: Array) -> Any:
        return [m.select_memory(s, index) for m, s in zip(self.members, memory)]
