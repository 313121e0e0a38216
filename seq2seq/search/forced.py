"""Scoring given translations: the decoder fed the given tokens instead of its own choices.

The same loop as the search (:func:`.algorithms.run`) with a strategy that, at each step, reads the
log-probability of the given token and feeds it in (forced decoding). So a model, an exported
model and an ensemble score exactly as they search: a model's own greedy output scores what the
greedy search reported, and a score is comparable with the search's (``log_prob / lp``, the GNMT
length penalty over the tokens and the ``</s>``, which every given translation ends with).
"""
from __future__ import annotations

from typing import Sequence

from ..core.token_ids import EOS_ID, PAD_ID
from .algorithms import run
from .backend import Array, Backend
from .rules import length_penalty


class Forced:
    """Feeds each sentence its given tokens (``targets`` [B, T]: ids then </s>, padded), recording
    each token's log-probability."""

    def __init__(self, xp: Backend, targets: Array, lengths: list[int]) -> None:
        self.xp, self.targets = xp, targets
        self.longest = max(lengths)
        self.row_length = xp.array(lengths, "int64")
        self.token_log_probs = xp.full(tuple(targets.shape), 0.0, "float32")
        self.log_prob = xp.full((targets.shape[0],), 0.0, "float32")  # summed as the search sums
        self.rows = xp.arange(targets.shape[0])
        self.given: Array = None

    def advance(self, step: int, scores: Array, weights: Array | None) -> Array:
        xp, rows = self.xp, self.rows
        given = self.given = self.targets[rows, step]
        token = xp.log_probs_at(scores, given[:, None])[:, 0]
        self.token_log_probs[rows, step] = token
        self.log_prob[rows] += token
        return step + 1 < self.row_length

    def carry_on(self, keep: Array | None) -> tuple[Array, Array | None]:
        if keep is None:
            return self.given, None
        self.rows, self.row_length = self.rows[keep], self.row_length[keep]
        return self.given[keep], keep


class Scored:
    """One given translation's score under the model (as a search would rank it)."""

    def __init__(self, tokens: list[int], token_log_probs: list[float], log_prob: float, alpha: float) -> None:
        self.tokens = tokens  # without </s>
        self.token_log_probs = token_log_probs  # one per token, then the </s>'s
        self.log_prob = log_prob
        self.score = log_prob / length_penalty(len(tokens) + 1, alpha)


def score_ids(xp: Backend, sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], alpha: float,
              batch_size: int) -> list[Scored]:
    """Score each ``targets[i]`` (ids without </s>) as the translation of ``sources[i]`` (ids without
    </s>), in batches ordered by source length as the search's (so a model's own output scores as
    its search reported); results in input order."""
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} translations")
    results: list[Scored | None] = [None] * len(sources)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        src, lengths = xp.sources([sources[i] for i in chunk])
        given = [list(targets[i]) + [EOS_ID] for i in chunk]
        width = max(len(g) for g in given)
        padded = xp.array([g + [PAD_ID] * (width - len(g)) for g in given], "int64")
        strategy = Forced(xp, padded, [len(g) for g in given])
        run(xp, src, lengths, strategy)
        token_log_probs, log_probs = xp.host(strategy.token_log_probs).tolist(), strategy.log_prob.tolist()
        for row, i in enumerate(chunk):
            n = len(given[row])
            results[i] = Scored(given[row][:-1], token_log_probs[row][:n], log_probs[row], alpha)
    return results  # type: ignore[return-value]
