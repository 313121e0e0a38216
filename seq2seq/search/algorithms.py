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

from typing import Any, Callable, Sequence

from ..core.token_ids import BOS_ID, EOS_ID
from .backend import Array, Backend, Host
from .finished import Finished
from .rules import Hypothesis, beam_done, best_first, ending, output_limit
from .settings import SearchSettings

Chooser = Callable[[Array], Array]  # a step's scores [N, V] -> chosen token ids [N]


def token_by_token(xp: Backend, src: Array, lengths: Host, limits: list[int], choose: Chooser, alpha: float,
                   attention: bool) -> list[Hypothesis]:
    """One hypothesis per sentence, each token chosen by ``choose`` from the step's scores.

    src: [B, S]; lengths: [B] (</s> included); limits: max output tokens per sentence. A sentence
    leaves the batch as soon as it ends, so the rest run on fewer rows."""
    batch = src.shape[0]
    memory, state = xp.encode(src, lengths)
    steps_max = max(limits)
    out = xp.full((batch, steps_max), EOS_ID, "int64")
    weights_all = xp.full((batch, steps_max, src.shape[1]), 0.0, "float32") if attention else None
    log_prob = xp.full((batch,), 0.0, "float32")
    length = xp.full((batch,), 0, "int64")  # tokens chosen, </s> included
    ended = xp.full((batch,), False, "bool")  # emitted </s> (not cut off by the limit)
    rows = xp.arange(batch)  # the sentence of each row still decoding
    row_limit = xp.array(limits, "int64")
    tokens = xp.full((batch,), BOS_ID, "int64")
    for step in range(steps_max):
        scores, state, weights = xp.step(tokens, state, memory)
        chosen = choose(scores)
        log_prob[rows] += xp.log_probs_at(scores, chosen[:, None])[:, 0]
        out[rows, step] = chosen
        length[rows] = step + 1
        if weights_all is not None and weights is not None:
            weights_all[rows, step] = weights
        is_eos = chosen == EOS_ID
        ended[rows] = is_eos
        going = xp.host(~is_eos & (step + 1 < row_limit))  # the one value the host waits for each step
        if not going.any():
            break
        if not going.all():
            keep = xp.rows_of(going)
            rows, row_limit, chosen = rows[keep], row_limit[keep], chosen[keep]
            state, memory = xp.select_state(state, keep), xp.select_memory(memory, keep)
        tokens = chosen
    hyps = []
    attention_all = None if weights_all is None or not xp.has_attention else xp.host(weights_all)
    source_lengths = lengths.tolist()
    for b, (row, lp, n, eos) in enumerate(zip(out.tolist(), log_prob.tolist(), length.tolist(), ended.tolist())):
        attn = None if attention_all is None else attention_all[b, :n, :source_lengths[b]]
        hyps.append(ending(row[: n - 1 if eos else n], lp, alpha, eos, attn))
    return hyps


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


def beam_search(xp: Backend, src: Array, lengths: Host, limits: list[int], beam: int, alpha: float, nbest: int,
                attention: bool, early_stop: bool) -> list[list[Hypothesis]]:
    """Per sentence, its ``nbest`` best hypotheses, best first, the whole batch as one (B * K) block.

    Each step ranks every sentence's candidates at once, records the hypotheses that end in
    :class:`~.finished.Finished` and asks :func:`~.rules.beam_done`'s rule of all sentences at once.
    """
    nbest = min(nbest, beam)
    batch = src.shape[0]
    memory, state = xp.encode(src, lengths)
    expand = xp.arange(batch * beam) // beam  # [B*K]: the sentence of each beam
    # scores[i, k]: log-probability of beam k of active sentence i; only beam 0 is alive at the start.
    scores = xp.full((batch, beam), float("-inf"), "float32")
    scores[:, 0] = 0.0
    history = xp.full((batch * beam, 0), BOS_ID, "int64")
    attn_history: Array | None = None  # [rows, t, S] when attention is asked for
    longest = max(limits)
    finished = Finished(xp, batch, nbest, longest, src.shape[1], attention and xp.has_attention)
    # The first step runs on one row per sentence (its K beams are all <s>), then the K part ways.
    tokens = xp.full((batch,), BOS_ID, "int64")
    active = xp.arange(batch)  # the sentence of each block of K rows
    active_limits = xp.array(limits, "int64")
    for step in range(longest):
        n = active.shape[0]
        offsets = (xp.arange(n) * beam)[:, None]  # [n, 1]: the first row of each sentence
        step_scores, state, weights = xp.step(tokens, state, memory)
        if step == 0:  # K rows per sentence from now on, all reading its one memory entry
            step_scores, state = step_scores[expand], xp.select_state(state, expand)
            weights = None if weights is None else weights[expand]
        so_far = None  # each row's attention, this step's included
        if finished.attention is not None and weights is not None:
            now = weights[:, None, :]
            so_far = now if attn_history is None else xp.concat([attn_history, now], axis=1)
        top_scores, top_beam, top_token = top_candidates(xp, scores, step_scores, beam, 2 * beam)  # [n, 2K]
        is_eos = top_token == EOS_ID
        # Hypotheses ending here: an </s> among a sentence's top K candidates (its tokens: the
        # beam's history), and, where the length limit is reached, every other live one of the top
        # K (the history and its token). Either has taken step + 1 steps.
        live = xp.isfinite(top_scores[:, :beam])
        at_limit = (step + 1 >= active_limits)[:, None]  # [n, 1]
        ending_here = xp.concat([is_eos[:, :beam] & live, ~is_eos[:, :beam] & live & at_limit], axis=1)
        # Where reading a value costs nothing, the steps where nothing ends skip the bookkeeping.
        if not xp.free_reads or bool(ending_here.any()):
            rows = offsets + top_beam[:, :beam]  # [n, K]
            finished.add_step(active, step + 1, alpha, top_scores[:, :beam],
                              history[rows.reshape(-1)].reshape(n, beam, step), top_token[:, :beam], ending_here,
                              None if so_far is None else so_far[rows.reshape(-1)].reshape(n, beam, step + 1, -1))
        done = beam_done(step + 1, active_limits, finished.count[active], beam, nbest, is_eos[:, 0], early_stop)
        going = xp.host(~done)  # the one value the host waits for each step
        if not going.any():
            break
        # The K best candidates that do not end in </s> carry on.
        keep_scores, keep = xp.topk(xp.masked_fill(top_scores, is_eos, float("-inf")), beam)  # [n, K]
        order = offsets + xp.pick(top_beam, keep)  # [n, K]: which old row each new beam extends
        keep_token = xp.pick(top_token, keep)
        if not going.all():  # drop the sentences that are done
            index = xp.rows_of(going)
            order, keep_scores, keep_token = order[index], keep_scores[index], keep_token[index]
            memory, active, active_limits = xp.select_memory(memory, index), active[index], active_limits[index]
        order = order.reshape(-1)
        scores = keep_scores
        history = xp.concat([history[order], keep_token.reshape(-1, 1)], axis=1)
        if so_far is not None:
            attn_history = so_far[order]
        tokens = keep_token.reshape(-1)
        state = xp.select_state(state, order)
    return finished.hypotheses(lengths.tolist(), nbest)


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
