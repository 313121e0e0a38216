"""The rules every search follows, written once: output length limit, length penalty, when a
sentence's beam search is done, and how its hypotheses are ranked.

The search (:mod:`.algorithms`) applies them whatever runs the model; :func:`beam_done` is
element-wise, so a search on a device asks it of all its sentences at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class Hypothesis:
    tokens: list[int]  # without <s> and </s>
    score: float  # the ranking score: log_prob / length penalty
    log_prob: float  # total log-probability under the model (</s> included when emitted)
    attention: Any = None  # [steps, source tokens + </s>] (a torch or NumPy array): one row per output token
    ended: bool = True  # emitted </s> (False: cut off by the length limit)


def output_limit(source_tokens: int, ratio: float, extra: int) -> int:
    """Longest output allowed for a source of ``source_tokens`` tokens (without </s>):
    ceil(ratio * source tokens) + extra, at least 1."""
    return max(math.ceil(source_tokens * ratio) + extra, 1)


def length_penalty(steps: int, alpha: float) -> float:
    """GNMT's ((5 + steps) / 6) ** alpha; ``steps`` counts the tokens and the </s> (if emitted)."""
    return ((5.0 + steps) / 6.0) ** alpha


def ending(tokens: list[int], log_prob: float, alpha: float, ended: bool, attention: Any = None) -> Hypothesis:
    """A finished hypothesis: ``tokens`` without </s>, scored ``log_prob / length_penalty``."""
    steps = len(tokens) + (1 if ended else 0)
    return Hypothesis(tokens, log_prob / length_penalty(steps, alpha), log_prob, attention, ended)


def beam_done(steps_taken: Any, limit: Any, finished: Any, beam: int, nbest: int, best_ended: Any,
              early_stop: bool) -> Any:
    """Whether a sentence's beam search stops after ``steps_taken`` steps: its length limit is
    reached, ``beam`` hypotheses have ended, or (``early_stop``) its best candidate ended in
    </s> this step and ``nbest`` hypotheses have ended: then no live beam has a higher
    log-probability, so with alpha = 0 nothing better can come (Joey NMT's and OpenNMT's rule).

    Element-wise: ``limit``, ``finished`` and ``best_ended`` may be arrays or tensors, one entry
    per sentence (a search on a device asks for all its sentences at once)."""
    return (steps_taken >= limit) | (finished >= beam) | (early_stop & best_ended & (finished >= nbest))


def best_first(finished: Sequence[Hypothesis], nbest: int) -> list[Hypothesis]:
    """A sentence's ``nbest`` best hypotheses by score (ties keep the order they ended in); a
    sentence with none gets one empty hypothesis of score -inf."""
    ranked = sorted(finished, key=lambda h: h.score, reverse=True)
    return ranked[:nbest] if ranked else [Hypothesis([], float("-inf"), float("-inf"), ended=False)]
