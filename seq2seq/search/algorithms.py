"""Inference feeds itself: greedy search, sampling and batched beam search, written once.

All start from ``<s>`` and the bridged encoder state, feed each chosen token back in, and stop at
``</s>`` or at the length limit ``ceil(max_length_ratio * source_length) + max_length_extra``. They
run over a :class:`~.backend.Backend`: the PyTorch model's or the exported model's.

Greedy search takes the most likely token at each step; sampling draws it from the softmax at a
temperature, optionally cut to the ``top_k`` most likely tokens and to the smallest set whose
probability reaches ``top_p`` (nucleus sampling). Beam search keeps the whole batch as one
``(B * K)`` block: at each step the continuations of every sentence are ranked at once, and the
decoder state is reordered by row (no Python loop over hypotheses); the K beams of a sentence
read one copy of its memory. Everything a search keeps, the hypotheses that have ended included,
stays where the backend computes (a GPU's memory); each step the host waits for one small array
(which sentences go on) and loops over no sentence. Sentences that are done leave the batch, so
the rest run on fewer rows.

Every hypothesis carries its total log-probability under the model (``</s>`` included when
emitted) and the score it is ranked by, ``log_prob / lp`` with the GNMT length penalty
``lp = ((5 + steps) / 6) ** alpha``, where ``steps`` counts the tokens and the ``</s>``
(:mod:`.rules`). With ``attention`` asked for, it also carries the attention weights of each
step over the source tokens.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from ..core.token_ids import BOS_ID, EOS_ID
from .backend import Array, Backend, Host
from .finished import Finished
from .rules import Hypothesis, beam_done, best_first, ending, output_limit
from .settings import SearchSettings

Chooser = Callable[[Array], Array]  # a step's scores [N, V] -> chosen token ids [N]


class Strategy(Protocol):
    """How a search picks what goes on after each decoder step (:func:`run` is the loop around it).

    Rows are the decoder's; a sentence has one row (token by token) or K (beam search), and a
    sentence that is done leaves the batch with all its rows."""

    longest: int  # the most steps any sentence may take

    def advance(self, step: int, scores: Array, weights: Array | None) -> Array:
        """Take step ``step``'s scores [rows, V] (and attention weights [rows, S]): record what ends
        here; return which sentences go on, [n] bool (the one array the host waits for)."""

    def carry_on(self, keep: Array | None) -> tuple[Array, Array | None]:
        """Keep the sentences ``keep`` (positions among those of this step; None: all); return the
        tokens the next step feeds [rows'] and which of this step's state rows each new row
        continues (None: the same rows)."""


def run(xp: Backend, src: Array, lengths: Host, strategy: Strategy) -> None:
    """The search loop: from ``<s>`` and the bridged encoder state, one decoder step after another,
    the ``strategy`` choosing what goes on, until every sentence is done."""
    memory, state = xp.encode(src, lengths)
    tokens = xp.full((src.shape[0],), BOS_ID, "int64")
    for step in range(strategy.longest):
        scores, state, weights = xp.step(tokens, state, memory)
        going = xp.host(strategy.advance(step, scores, weights))  # the one value the host waits for each step
        if not going.any():
            return
        keep = None if going.all() else xp.rows_of(going)
        if keep is not None:  # the sentences that are done leave the batch
            memory = xp.select_memory(memory, keep)
        tokens, rows = strategy.carry_on(keep)
        if rows is not None:
            state = xp.select_state(state, rows)


class TokenByToken:
    """One hypothesis per sentence (one row each), each token chosen by ``choose`` from the step's
    scores: greedy search (the most likely) or sampling.

    lengths: [B] (</s> included); limits: max output tokens per sentence."""

    def __init__(self, xp: Backend, batch: int, source_length: int, limits: list[int], choose: Chooser,
                 attention: bool) -> None:
        self.xp, self.choose = xp, choose
        self.longest = max(limits)
        self.out = xp.full((batch, self.longest), EOS_ID, "int64")
        self.weights = xp.full((batch, self.longest, source_length), 0.0, "float32") if attention else None
        self.log_prob = xp.full((batch,), 0.0, "float32")
        self.length = xp.full((batch,), 0, "int64")  # tokens chosen, </s> included
        self.ended = xp.full((batch,), False, "bool")  # emitted </s> (not cut off by the limit)
        self.rows = xp.arange(batch)  # the sentence of each row still decoding
        self.row_limit = xp.array(limits, "int64")
        self.chosen: Array = None

    def advance(self, step: int, scores: Array, weights: Array | None) -> Array:
        xp, rows = self.xp, self.rows
        chosen = self.chosen = self.choose(scores)
        self.log_prob[rows] += xp.log_probs_at(scores, chosen[:, None])[:, 0]
        self.out[rows, step] = chosen
        self.length[rows] = step + 1
        if self.weights is not None and weights is not None:
            self.weights[rows, step] = weights
        is_eos = chosen == EOS_ID
        self.ended[rows] = is_eos
        return ~is_eos & (step + 1 < self.row_limit)

    def carry_on(self, keep: Array | None) -> tuple[Array, Array | None]:
        if keep is None:
            return self.chosen, None
        self.rows, self.row_limit = self.rows[keep], self.row_limit[keep]
        return self.chosen[keep], keep

    def hypotheses(self, source_lengths: list[int], alpha: float) -> list[Hypothesis]:
        xp = self.xp
        attention = None if self.weights is None or not xp.has_attention else xp.host(self.weights)
        hyps = []
        columns = (self.out.tolist(), self.log_prob.tolist(), self.length.tolist(), self.ended.tolist())
        for b, (row, lp, n, eos) in enumerate(zip(*columns)):
            attn = None if attention is None else attention[b, :n, :source_lengths[b]]
            hyps.append(ending(row[: n - 1 if eos else n], lp, alpha, eos, attn))
        return hyps


def token_by_token(xp: Backend, src: Array, lengths: Host, limits: list[int], choose: Chooser, alpha: float,
                   attention: bool) -> list[Hypothesis]:
    """One hypothesis per sentence, each token chosen by ``choose`` (:class:`TokenByToken`).

    src: [B, S]; lengths: [B] (</s> included); limits: max output tokens per sentence."""
    strategy = TokenByToken(xp, src.shape[0], src.shape[1], limits, choose, attention)
    run(xp, src, lengths, strategy)
    return strategy.hypotheses(lengths.tolist(), alpha)


def top_candidates(xp: Backend, scores: Array, step_scores: Array, beam: int, count: int
                   ) -> tuple[Array, Array, Array]:
    """The ``count`` best one-token extensions of each sentence's beams.

    scores: [n, K] beam log-probabilities; step_scores: [n * K, V]. Returns their log-probabilities,
    beams and tokens, each [n, count], best first. Each beam's own top K + 1 tokens are enough
    (``count`` <= 2K): a beam has one </s>, so its j-th best token other than </s> is among its
    top j + 1. Scoring only those avoids building the [n, K * V] table of every extension.
    """
    n, vocab = scores.shape[0], step_scores.shape[-1]
    per_beam = min(beam + 1, vocab)
    row_tokens = xp.best_tokens(step_scores, per_beam)  # [n*K, k']
    candidates = (scores.reshape(-1, 1) + xp.log_probs_at(step_scores, row_tokens)).reshape(n, beam * per_beam)
    top_scores, top_index = xp.topk(candidates, count)
    top_token = xp.pick(row_tokens.reshape(n, beam * per_beam), top_index)
    return top_scores, top_index // per_beam, top_token


class BeamSearch:
    """Per sentence, its ``nbest`` best hypotheses, the whole batch as one (B * K) block.

    Each step ranks every sentence's candidates at once, records the hypotheses that end in
    :class:`~.finished.Finished` and asks :func:`~.rules.beam_done`'s rule of all sentences at once.
    The first step runs on one row per sentence (its K beams are all <s>), then the K part ways,
    all reading the sentence's one memory entry.
    """

    def __init__(self, xp: Backend, batch: int, source_length: int, limits: list[int], beam: int, alpha: float,
                 nbest: int, attention: bool, early_stop: bool) -> None:
        self.xp, self.beam, self.alpha, self.early_stop = xp, beam, alpha, early_stop
        self.nbest = min(nbest, beam)
        self.longest = max(limits)
        self.expand = xp.arange(batch * beam) // beam  # [B*K]: the sentence of each beam
        # scores[i, k]: log-probability of beam k of active sentence i; only beam 0 is alive at the start.
        self.scores = xp.full((batch, beam), float("-inf"), "float32")
        self.scores[:, 0] = 0.0
        self.history = xp.full((batch * beam, 0), BOS_ID, "int64")
        self.attn_history: Array | None = None  # [rows, t, S] when attention is asked for
        self.finished = Finished(xp, batch, self.nbest, self.longest, source_length, attention and xp.has_attention)
        self.active = xp.arange(batch)  # the sentence of each block of K rows
        self.active_limits = xp.array(limits, "int64")
        self.step = 0
        self.candidates: tuple[Array, Array, Array, Array] | None = None
        self.offsets: Array = None
        self.so_far: Array | None = None

    def advance(self, step: int, step_scores: Array, weights: Array | None) -> Array:
        xp, beam, finished = self.xp, self.beam, self.finished
        n = self.active.shape[0]
        self.step = step
        if step == 0:  # K rows per sentence from now on (the state's rows follow in carry_on)
            step_scores = step_scores[self.expand]
            weights = None if weights is None else weights[self.expand]
        so_far = None  # each row's attention, this step's included
        if finished.attention is not None and weights is not None:
            now = weights[:, None, :]
            so_far = now if self.attn_history is None else xp.concat([self.attn_history, now], axis=1)
        self.so_far = so_far
        top_scores, top_beam, top_token = top_candidates(xp, self.scores, step_scores, beam, 2 * beam)  # [n, 2K]
        is_eos = top_token == EOS_ID
        self.candidates = (top_scores, top_beam, top_token, is_eos)
        # Hypotheses ending here: an </s> among a sentence's top K candidates (its tokens: the
        # beam's history), and, where the length limit is reached, every other live one of the top
        # K (the history and its token). Either has taken step + 1 steps.
        live = xp.isfinite(top_scores[:, :beam])
        at_limit = (step + 1 >= self.active_limits)[:, None]  # [n, 1]
        ending_here = xp.concat([is_eos[:, :beam] & live, ~is_eos[:, :beam] & live & at_limit], axis=1)
        # Where reading a value costs nothing, the steps where nothing ends skip the bookkeeping.
        self.offsets = (xp.arange(n) * beam)[:, None]  # [n, 1]: the first row of each sentence
        if not xp.free_reads or bool(ending_here.any()):
            rows = self.offsets + top_beam[:, :beam]  # [n, K]
            finished.add_step(self.active, step + 1, self.alpha, top_scores[:, :beam],
                              self.history[rows.reshape(-1)].reshape(n, beam, step), top_token[:, :beam],
                              ending_here,
                              None if so_far is None else so_far[rows.reshape(-1)].reshape(n, beam, step + 1, -1))
        done = beam_done(step + 1, self.active_limits, finished.count[self.active], beam, self.nbest, is_eos[:, 0],
                         self.early_stop)
        return ~done

    def carry_on(self, keep: Array | None) -> tuple[Array, Array | None]:
        """The K best candidates that do not end in </s> carry on."""
        xp, beam = self.xp, self.beam
        assert self.candidates is not None
        top_scores, top_beam, top_token, is_eos = self.candidates
        keep_scores, best = xp.topk(xp.masked_fill(top_scores, is_eos, float("-inf")), beam)  # [n, K]
        order = self.offsets + xp.pick(top_beam, best)  # [n, K]: which old row each new beam extends
        keep_token = xp.pick(top_token, best)
        if keep is not None:  # drop the sentences that are done
            order, keep_scores, keep_token = order[keep], keep_scores[keep], keep_token[keep]
            self.active, self.active_limits = self.active[keep], self.active_limits[keep]
        order = order.reshape(-1)
        self.scores = keep_scores
        self.history = xp.concat([self.history[order], keep_token.reshape(-1, 1)], axis=1)
        if self.so_far is not None:
            self.attn_history = self.so_far[order]
        # at step 0 the state still has one row per sentence: beam row r continues sentence row r // K
        return keep_token.reshape(-1), (self.expand[order] if self.step == 0 else order)


def beam_search(xp: Backend, src: Array, lengths: Host, limits: list[int], beam: int, alpha: float, nbest: int,
                attention: bool, early_stop: bool) -> list[list[Hypothesis]]:
    """Per sentence, its ``nbest`` best hypotheses, best first (:class:`BeamSearch`)."""
    strategy = BeamSearch(xp, src.shape[0], src.shape[1], limits, beam, alpha, nbest, attention, early_stop)
    run(xp, src, lengths, strategy)
    return strategy.finished.hypotheses(lengths.tolist(), strategy.nbest)


def search(xp: Backend, src: Array, lengths: Host, settings: SearchSettings, generator: Any = None
           ) -> list[list[Hypothesis]]:
    """Search one padded batch (src: [B, S], lengths [B] with </s>, from :meth:`~.backend.Backend.sources`)
    as ``settings`` say."""
    limits = [output_limit(n - 1, settings.max_length_ratio, settings.max_length_extra) for n in lengths.tolist()]
    if settings.sampling:
        generator = xp.generator(settings.seed) if generator is None else generator
        count = settings.nbest
        rows = [b for b in range(src.shape[0]) for _ in range(count)]
        hyps = token_by_token(xp, src[xp.array(rows, "int64")], lengths[rows], [limits[r] for r in rows],
                              xp.sampler(settings.temperature, settings.top_k, settings.top_p, generator),
                              settings.length_penalty, settings.attention)
        return [best_first(hyps[b * count:(b + 1) * count], count) for b in range(src.shape[0])]
    if settings.beam == 1 and settings.nbest == 1:
        return [[h] for h in token_by_token(xp, src, lengths, limits, xp.most_likely, settings.length_penalty,
                                            settings.attention)]
    return beam_search(xp, src, lengths, limits, settings.beam, settings.length_penalty, settings.nbest,
                       settings.attention, settings.early_stop)


def translate_ids(xp: Backend, sources: Sequence[Sequence[int]], settings: SearchSettings
                  ) -> list[list[Hypothesis]]:
    """Search for every source (token ids without </s>), in length-sorted batches; results in input order."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    generator = xp.generator(settings.seed) if settings.sampling else None
    for start in range(0, len(order), settings.batch_size):
        chunk = order[start:start + settings.batch_size]
        src, lengths = xp.sources([sources[i] for i in chunk])
        for i, hyps in zip(chunk, search(xp, src, lengths, settings, generator)):
            results[i] = hyps
    return results
