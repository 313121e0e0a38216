"""The PyTorch search (:mod:`seq2seq.decoding.search`) over an exported model, in NumPy.

The same algorithms, step for step: greedy search and sampling take one token per step and
drop sentences as they end; beam search keeps the batch as one (B * K) block, ranks each
sentence's K + 1 best tokens per beam, and stops, scores and ranks by the shared rules of
:mod:`seq2seq.core.search_rules`. Outputs equal the PyTorch search's up to float rounding
(and the order of exact ties). Sampling draws from NumPy's generator, so its samples differ
from the PyTorch model's for the same seed.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from ..core.search_rules import Hypothesis, beam_done, best_first, ending, output_limit
from ..core.search_settings import SearchSettings
from ..data.token_ids import BOS_ID, EOS_ID, PAD_ID
from .onnx_model import OnnxModel, select_memory, select_state

Chooser = Callable[[np.ndarray], np.ndarray]  # log-probabilities [N, V] -> chosen token ids [N]


def source_array(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Sources as the encoder takes them: ids + </s>, padded with <pad>; and their lengths."""
    lengths = np.array([len(s) + 1 for s in seqs], dtype=np.int64)
    src = np.full((len(seqs), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        src[row, :len(seq)] = seq
        src[row, len(seq)] = EOS_ID
    return src, lengths


def most_likely(log_probs: np.ndarray) -> np.ndarray:
    return log_probs.argmax(axis=-1)


def sampler(temperature: float, top_k: int, top_p: float, rng: np.random.Generator) -> Chooser:
    """Draw from softmax(log_probs / temperature), cut to the top_k tokens (0: all) and to the
    smallest set whose probability reaches top_p (1.0: all), as the PyTorch sampler does."""

    def choose(log_probs: np.ndarray) -> np.ndarray:
        scaled = log_probs.astype(np.float64) / temperature
        if 0 < top_k < scaled.shape[-1]:
            kth = -np.partition(-scaled, top_k - 1, axis=-1)[:, top_k - 1:top_k]
            scaled = np.where(scaled < kth, -np.inf, scaled)
        probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        if top_p < 1.0:
            order = np.argsort(-probs, axis=-1, kind="stable")
            ordered = np.take_along_axis(probs, order, axis=-1)
            outside = ordered.cumsum(axis=-1) - ordered >= top_p
            np.put_along_axis(probs, order, np.where(outside, 0.0, ordered), axis=-1)
            probs /= probs.sum(axis=-1, keepdims=True)
        cumulative = probs.cumsum(axis=-1)
        draws = rng.random((probs.shape[0], 1)) * cumulative[:, -1:]
        return np.minimum((cumulative <= draws).sum(axis=-1), probs.shape[-1] - 1)

    return choose


def token_by_token(model: OnnxModel, src: np.ndarray, lengths: np.ndarray, limits: list[int], choose: Chooser,
                   alpha: float, attention: bool) -> list[Hypothesis]:
    """One hypothesis per sentence, each token chosen by ``choose``; ended sentences leave the batch."""
    batch = src.shape[0]
    memory, state = model.encode(src, lengths)
    steps_max = max(limits)
    out = np.full((batch, steps_max), EOS_ID, dtype=np.int64)
    weights_all = np.zeros((batch, steps_max, src.shape[1]), dtype=np.float32) if attention else None
    log_prob = np.zeros(batch, dtype=np.float32)
    length = np.zeros(batch, dtype=np.int64)
    ended = np.zeros(batch, dtype=bool)
    rows = np.arange(batch)
    row_limit = np.array(limits)
    tokens = np.full(batch, BOS_ID, dtype=np.int64)
    for step in range(steps_max):
        log_probs, state, weights = model.step(tokens, state, memory)
        chosen = choose(log_probs)
        log_prob[rows] += log_probs[np.arange(len(rows)), chosen]
        out[rows, step] = chosen
        length[rows] = step + 1
        if weights_all is not None and weights is not None:
            weights_all[rows, step] = weights
        is_eos = chosen == EOS_ID
        ended[rows] = is_eos
        going = ~is_eos & (step + 1 < row_limit)
        if not going.any():
            break
        if not going.all():
            keep = np.flatnonzero(going)
            rows, row_limit, chosen = rows[keep], row_limit[keep], chosen[keep]
            state, memory = select_state(state, keep), select_memory(memory, keep)
        tokens = chosen.astype(np.int64)
    hyps = []
    for b in range(batch):
        n, eos = int(length[b]), bool(ended[b])
        attn = None
        if weights_all is not None and model.has_attention:
            attn = weights_all[b, :n, :int(lengths[b])]
        hyps.append(ending(out[b, :n - 1 if eos else n].tolist(), float(log_prob[b]), alpha, eos, attn))
    return hyps


def row_top(values: np.ndarray, k: int, chunk: int = 64) -> np.ndarray:
    """The indices of the k largest values of each row (in no particular order).

    ``np.argpartition`` over a whole large vocabulary row is slow, so (as the PyTorch search's
    ``row_top`` does) the row is cut into chunks: the k largest values lie in the k chunks with
    the highest maxima, and only those k * chunk values are partitioned."""
    rows, vocab = values.shape
    if vocab < 4 * chunk or k * chunk >= vocab:
        return np.argpartition(-values, k - 1, axis=-1)[:, :k]
    whole = vocab - vocab % chunk  # the last vocab % chunk columns join the candidates as they are
    chunks = values[:, :whole].reshape(rows, -1, chunk)
    best_chunks = np.argpartition(-chunks.max(axis=-1), k - 1, axis=-1)[:, :k]  # [rows, k]
    columns = (best_chunks[:, :, None] * chunk + np.arange(chunk)).reshape(rows, k * chunk)
    columns = np.concatenate([columns, np.broadcast_to(np.arange(whole, vocab), (rows, vocab - whole))], axis=1)
    picked = np.take_along_axis(values, columns, axis=-1)
    return np.take_along_axis(columns, np.argpartition(-picked, k - 1, axis=-1)[:, :k], axis=-1)


def top_candidates(scores: np.ndarray, log_probs: np.ndarray, beam: int, count: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``count`` best one-token extensions of each sentence's beams, best first: their scores,
    beams and tokens, each [n, count]. As in the PyTorch search, each beam's own K + 1 best
    tokens are enough (a beam has one </s>)."""
    n, vocab = scores.shape[0], log_probs.shape[-1]
    per_beam = min(beam + 1, vocab)
    if per_beam < vocab:
        row_tokens = row_top(log_probs, per_beam)
    else:
        row_tokens = np.broadcast_to(np.arange(vocab), log_probs.shape)
    row_logp = np.take_along_axis(log_probs, row_tokens, axis=-1)
    candidates = (scores.reshape(-1, 1) + row_logp).reshape(n, beam * per_beam)
    top_index = np.argsort(-candidates, axis=-1, kind="stable")[:, :count]
    top_scores = np.take_along_axis(candidates, top_index, axis=-1)
    top_token = np.take_along_axis(row_tokens.reshape(n, beam * per_beam), top_index, axis=-1)
    return top_scores, top_index // per_beam, top_token


def beam_search(model: OnnxModel, src: np.ndarray, lengths: np.ndarray, limits: list[int], beam: int, alpha: float,
                nbest: int, attention: bool, early_stop: bool) -> list[list[Hypothesis]]:
    """Per sentence, its ``nbest`` best hypotheses, best first; the whole batch as one (B * K) block."""
    nbest = min(nbest, beam)
    batch = src.shape[0]
    memory, state = model.encode(src, lengths)
    expand = np.repeat(np.arange(batch), beam)  # [B*K]: the sentence of each beam
    scores = np.full((batch, beam), -np.inf, dtype=np.float32)  # only beam 0 is alive at the start
    scores[:, 0] = 0.0
    history = np.zeros((batch * beam, 0), dtype=np.int64)
    attn_history: np.ndarray | None = None
    tokens = np.full(batch, BOS_ID, dtype=np.int64)  # the first step runs one row per sentence
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    active = list(range(batch))
    for step in range(max(limits)):
        n = len(active)
        offsets = (np.arange(n) * beam)[:, None]
        log_probs, state, weights = model.step(tokens, state, memory)
        if step == 0:  # K rows per sentence from now on, all reading its one memory entry
            log_probs, state = log_probs[expand], select_state(state, expand)
            weights = None if weights is None else weights[expand]
        so_far = None
        if attention and weights is not None:
            now = weights[:, None, :]
            so_far = now if attn_history is None else np.concatenate([attn_history, now], axis=1)
        top_scores, top_beam, top_token = top_candidates(scores, log_probs, beam, 2 * beam)
        is_eos = top_token == EOS_ID
        eos_rows, eos_cols = np.nonzero(is_eos[:, :beam] & np.isfinite(top_scores[:, :beam]))
        at_limit = [i for i in range(n) if step + 1 >= limits[active[i]]]
        if len(eos_rows) or at_limit:
            src_row = offsets + top_beam

            def candidate(i: int, c: int, extra: list[int], eos: bool) -> Hypothesis:
                row, b = int(src_row[i, c]), active[i]
                attn = None if so_far is None else so_far[row, :, :int(lengths[b])]
                return ending(history[row].tolist() + extra, float(top_scores[i, c]), alpha, eos, attn)

            for i, c in zip(eos_rows.tolist(), eos_cols.tolist()):
                finished[active[i]].append(candidate(i, c, [], True))
            for i in at_limit:  # the limit cuts these off: the top K candidates end here, </s> or not
                finished[active[i]] += [candidate(i, c, [int(top_token[i, c])], False) for c in range(beam)
                                        if math.isfinite(top_scores[i, c]) and top_token[i, c] != EOS_ID]
        going = [i for i in range(n) if not beam_done(step + 1, limits[active[i]], len(finished[active[i]]), beam,
                                                      nbest, bool(is_eos[i, 0]), early_stop)]
        if not going:
            break
        # The K best candidates that do not end in </s> carry on.
        alive_scores = np.where(is_eos, np.float32(-np.inf), top_scores)
        keep = np.argsort(-alive_scores, axis=-1, kind="stable")[:, :beam]
        keep_scores = np.take_along_axis(alive_scores, keep, axis=-1)
        order = offsets + np.take_along_axis(top_beam, keep, axis=-1)
        keep_token = np.take_along_axis(top_token, keep, axis=-1)
        if len(going) < n:
            index = np.array(going)
            order, keep_scores, keep_token = order[index], keep_scores[index], keep_token[index]
            memory = select_memory(memory, index)
            active = [active[i] for i in going]
        order = order.reshape(-1)
        scores = keep_scores
        history = np.concatenate([history[order], keep_token.reshape(-1, 1)], axis=1)
        if so_far is not None:
            attn_history = so_far[order]
        tokens = keep_token.reshape(-1).astype(np.int64)
        state = select_state(state, order)
    return [best_first(finished[b], nbest) for b in range(batch)]


def search(model: OnnxModel, src: np.ndarray, lengths: np.ndarray, settings: SearchSettings,
           rng: np.random.Generator | None = None) -> list[list[Hypothesis]]:
    """Search one padded batch as ``settings`` say (the PyTorch ``search``'s contract)."""
    limits = [output_limit(int(n) - 1, settings.max_length_ratio, settings.max_length_extra) for n in lengths]
    if settings.sampling:
        rng = rng if rng is not None else np.random.default_rng(settings.seed)
        count = settings.nbest
        rows = np.repeat(np.arange(src.shape[0]), count)
        hyps = token_by_token(model, src[rows], lengths[rows], [limits[r] for r in rows],
                              sampler(settings.temperature, settings.top_k, settings.top_p, rng),
                              settings.length_penalty, settings.attention)
        return [best_first(hyps[b * count:(b + 1) * count], count) for b in range(src.shape[0])]
    if settings.beam == 1 and settings.nbest == 1:
        return [[h] for h in token_by_token(model, src, lengths, limits, most_likely, settings.length_penalty,
                                            settings.attention)]
    return beam_search(model, src, lengths, limits, settings.beam, settings.length_penalty, settings.nbest,
                       settings.attention, settings.early_stop)


def translate_ids(model: OnnxModel, sources: Sequence[Sequence[int]], settings: SearchSettings
                  ) -> list[list[Hypothesis]]:
    """Search for every source (ids without </s>), in length-sorted batches; results in input order."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    rng = np.random.default_rng(settings.seed) if settings.sampling else None
    for start in range(0, len(order), settings.batch_size):
        chunk = order[start:start + settings.batch_size]
        src, lengths = source_array([sources[i] for i in chunk])
        for i, hyps in zip(chunk, search(model, src, lengths, settings, rng)):
            results[i] = hyps
    return results
