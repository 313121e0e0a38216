"""Inference feeds itself: greedy search, sampling and batched beam search.

All start from ``<s>`` and the bridged encoder state, feed each chosen token back
in, and stop at ``</s>`` or at the length limit
``ceil(max_length_ratio * source_length) + max_length_extra``.

Greedy search takes the most likely token at each step; sampling draws it from the
softmax at a temperature, optionally cut to the ``top_k`` most likely tokens and to
the smallest set whose probability reaches ``top_p`` (nucleus sampling). Beam search
keeps the whole batch as one ``(B * K)`` tensor: at each step the ``K * V``
continuations of every sentence are ranked at once with ``topk``, and the decoder
state is reordered by ``index_select`` (no Python loop over hypotheses); the K beams of a
sentence read one copy of its memory.

Every hypothesis carries its total log-probability under the model (``</s>``
included when emitted) and the score it is ranked by, ``log_prob / lp`` with the
GNMT length penalty ``lp = ((5 + steps) / 6) ** alpha``, where ``steps`` counts the
tokens and the ``</s>``. With ``attention`` asked for, it also carries the attention
weights of each step over the source tokens.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

from ..core.search_rules import Hypothesis, beam_done, best_first, ending, length_penalty, output_limit
from ..core.search_settings import SearchSettings
from ..data.batching import source_tensor
from ..data.subwords import BOS_ID, EOS_ID
from ..model.seq2seq import Seq2Seq


__all__ = ["Hypothesis", "length_penalty", "max_lengths", "search", "translate_ids"]


def max_lengths(src_lengths: Tensor, ratio: float, extra: int) -> Tensor:
    """Longest output allowed per sentence (:func:`~seq2seq.core.search_rules.output_limit`)."""
    return torch.tensor([output_limit(n, ratio, extra) for n in src_lengths.tolist()], dtype=torch.long)


Chooser = Callable[[Tensor], Tensor]  # logits [N, V] -> chosen token ids [N]


def row_top(logits: Tensor, k: int, chunk: int = 64) -> tuple[Tensor, Tensor]:
    """``logits.topk(k)`` along the last axis, best first, computed faster on CPU.

    PyTorch's index-returning reductions (topk, max, argmax) are several times slower on CPU
    than a plain ``amax``, so over a large vocabulary the row is cut into chunks: the k
    best values lie in the k chunks with the highest maxima, and only those k * chunk
    values go through topk. Same values and indices (up to ties).
    """
    rows, vocab = logits.shape
    if vocab < 4 * chunk or k * chunk >= vocab:
        return logits.topk(k, dim=-1)
    whole = vocab - vocab % chunk  # the last vocab % chunk columns join the candidates as they are
    chunks = logits[:, :whole].view(rows, -1, chunk)  # a view: no copy
    best_chunks = chunks.amax(dim=-1).topk(k, dim=-1).indices  # [rows, k]
    picked = chunks.gather(1, best_chunks.unsqueeze(-1).expand(rows, k, chunk)).view(rows, k * chunk)
    candidates = torch.cat([picked, logits[:, whole:]], dim=1)
    top_values, where = candidates.topk(k, dim=-1)
    in_chunks = where < k * chunk
    chunk_of = best_chunks.gather(1, torch.div(where, chunk, rounding_mode="floor").clamp(max=k - 1))
    tokens = torch.where(in_chunks, chunk_of * chunk + where % chunk, whole + where - k * chunk)
    return top_values, tokens


def token_log_probs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log softmax(logits) at ``tokens`` [N, k] per row. PyTorch's row-wise log_softmax kernel
    is ~20% faster over [320, 8000] here than amax, subtract, exp and sum apart."""
    return torch.log_softmax(logits, dim=-1).gather(1, tokens)


def most_likely(logits: Tensor) -> Tensor:
    return row_top(logits, 1)[1].squeeze(1)


def sampler(temperature: float, top_k: int, top_p: float, generator: torch.Generator) -> Chooser:
    """Draw from softmax(logits / temperature), cut to the top_k tokens (0: all) and to the
    smallest set of tokens whose probability reaches top_p (1.0: all)."""

    def choose(logits: Tensor) -> Tensor:
        scaled = logits / temperature
        if 0 < top_k < scaled.size(-1):
            kth = scaled.topk(top_k, dim=-1).values[:, -1:]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        if top_p < 1.0:
            ordered, order = scaled.sort(dim=-1, descending=True)
            probs = torch.softmax(ordered, dim=-1)
            outside = probs.cumsum(dim=-1) - probs >= top_p  # the mass before this token already reaches top_p
            scaled = scaled.scatter(-1, order, ordered.masked_fill(outside, float("-inf")))
        return torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator).squeeze(1)

    return choose


@torch.inference_mode()
def token_by_token(model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, choose: Chooser,
                   alpha: float = 0.0, attention: bool = False) -> list[Hypothesis]:
    """One hypothesis per sentence, each token chosen by ``choose`` from the step's logits.

    src: [B, S]; src_lengths: [B]; limit: [B] max output tokens. A sentence leaves the
    batch as soon as it ends, so the rest run on fewer rows.
    """
    batch, device = src.size(0), src.device
    memory, state = model.encode(src, src_lengths)
    steps_max = int(limit.max())
    out = torch.full((batch, steps_max), EOS_ID, dtype=torch.long, device=device)
    weights_all = torch.zeros(batch, steps_max, src.size(1)) if attention else None
    log_prob = torch.zeros(batch, dtype=torch.float32, device=device)
    length = torch.zeros(batch, dtype=torch.long, device=device)  # tokens chosen, </s> included
    ended = torch.zeros(batch, dtype=torch.bool, device=device)  # emitted </s> (not cut off by the limit)
    rows = torch.arange(batch, device=device)  # the sentence of each row still decoding
    row_limit = limit.to(device)
    tokens = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=device)
    for step in range(steps_max):
        features, state, weights = model.decoder(tokens, state, memory)
        logits = model.generator(features[:, -1]).float()  # [rows, V]
        chosen = choose(logits)
        log_prob[rows] += token_log_probs(logits, chosen.unsqueeze(1)).squeeze(1)
        out[rows, step] = chosen
        length[rows] = step + 1
        if weights_all is not None and weights is not None:
            weights_all[rows.cpu(), step] = weights[:, -1].float().cpu()
        is_eos = chosen == EOS_ID
        ended[rows] = is_eos
        going = ~is_eos & (step + 1 < row_limit)
        if not bool(going.any()):
            break
        if not bool(going.all()):
            keep = going.nonzero().squeeze(1)
            rows, row_limit, chosen = rows[keep], row_limit[keep], chosen[keep]
            state, memory = state.select(keep), memory.select(keep)
        tokens = chosen.unsqueeze(1)
    hyps = []
    for b, (row, lp, n, eos) in enumerate(zip(out.tolist(), log_prob.tolist(), length.tolist(), ended.tolist())):
        attn = None
        if weights_all is not None and model.decoder.attention is not None:
            attn = weights_all[b, :n, : int(src_lengths[b])]
        hyps.append(ending(row[: n - 1 if eos else n], lp, alpha, eos, attn))
    return hyps


def greedy_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, alpha: float = 0.0,
                  attention: bool = False) -> list[Hypothesis]:
    """src: [B, S]; src_lengths: [B]; limit: [B] max output tokens. One hypothesis per sentence."""
    return token_by_token(model, src, src_lengths, limit, most_likely, alpha, attention)


def sample_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, count: int, alpha: float,
                  temperature: float, top_k: int, top_p: float, generator: torch.Generator,
                  attention: bool = False) -> list[list[Hypothesis]]:
    """``count`` samples per sentence, drawn independently, ranked by score (best first)."""
    rows = torch.arange(src.size(0)).repeat_interleave(count)
    hyps = token_by_token(model, src[rows.to(src.device)], src_lengths[rows], limit[rows],
                          sampler(temperature, top_k, top_p, generator), alpha, attention)
    return [best_first(hyps[b * count:(b + 1) * count], count) for b in range(src.size(0))]


@torch.inference_mode()
def beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, beam: int, alpha: float, nbest: int = 1,
    attention: bool = False, early_stop: bool = True,
) -> list[list[Hypothesis]]:
    """Per sentence, its ``nbest`` best hypotheses, best first (greedy search when beam = nbest = 1)."""
    if beam == 1 and nbest == 1:
        return [[h] for h in greedy_search(model, src, src_lengths, limit, alpha, attention)]
    return batched_beam_search(model, src, src_lengths, limit, beam, alpha, nbest, attention, early_stop)


def top_candidates(scores: Tensor, logits: Tensor, beam: int, count: int) -> tuple[Tensor, Tensor, Tensor]:
    """The ``count`` best one-token extensions of each sentence's beams.

    scores: [n, K] beam log-probabilities; logits: [n * K, V]. Returns their scores
    (log-probabilities), beams and tokens, each [n, count], best first. Each beam's own top
    K + 1 tokens are enough (``count`` <= 2K): a beam has one </s>, so its j-th best token
    other than </s> is among its top j + 1. Scoring only those avoids building the
    [n, K * V] table of every extension.
    """
    n, vocab = scores.size(0), logits.size(-1)
    per_beam = min(beam + 1, vocab)
    _, row_tokens = row_top(logits, per_beam)  # [n*K, k']
    row_logp = token_log_probs(logits, row_tokens)
    candidates = (scores.reshape(-1, 1) + row_logp).view(n, beam * per_beam)
    top_scores, top_index = candidates.topk(count, dim=-1)
    top_beam = torch.div(top_index, per_beam, rounding_mode="floor")
    top_token = row_tokens.view(n, beam * per_beam).gather(1, top_index)
    return top_scores, top_beam, top_token


@torch.inference_mode()
def batched_beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, beam: int, alpha: float, nbest: int = 1,
    attention: bool = False, early_stop: bool = True,
) -> list[list[Hypothesis]]:
    """Beam search over the whole batch as one (B * K) tensor.

    When a sentence is done is :func:`~seq2seq.core.search_rules.beam_done` (shared with the
    exported model's search). Done sentences leave the batch, so the rest run on fewer rows.
    """
    nbest = min(nbest, beam)
    device = src.device
    batch = src.size(0)
    memory, state = model.encode(src, src_lengths)
    expand = torch.arange(batch, device=device).repeat_interleave(beam)  # [B*K]: sentence of each beam
    # scores[i, k]: log-probability of beam k of active sentence i; only beam 0 is alive at the start.
    scores = torch.full((batch, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.full((batch * beam, 0), BOS_ID, dtype=torch.long, device=device)
    attn_history: Tensor | None = None  # [rows, t, S] when attention is asked for
    src_len = src_lengths.tolist()
    # The first step runs on one row per sentence (its K beams are all <s>), then the K part ways.
    tokens = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=device)
    limits = limit.tolist()
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    active = list(range(batch))  # the sentence of each block of K rows
    for step in range(max(limits)):
        n = len(active)
        offsets = (torch.arange(n, device=device) * beam).unsqueeze(1)  # [n, 1]
        features, state, weights = model.decoder(tokens, state, memory)
        logits = model.generator(features[:, -1]).float()  # [n*K, V]
        if step == 0:  # K rows per sentence from now on, all reading its one memory entry
            logits, state = logits.index_select(0, expand), state.select(expand)
            weights = None if weights is None else weights.index_select(0, expand)
        so_far = None  # each row's attention, this step's included
        if attention and weights is not None:
            so_far = weights if attn_history is None else torch.cat([attn_history, weights], dim=1)
        top_scores, top_beam, top_token = top_candidates(scores, logits, beam, 2 * beam)  # [n, 2K]
        is_eos = top_token == EOS_ID
        # Record hypotheses ending here: an </s> among a sentence's top K candidates,
        # and every live beam of a sentence whose length limit is reached.
        eos_rows, eos_cols = torch.nonzero(is_eos[:, :beam] & torch.isfinite(top_scores[:, :beam]), as_tuple=True)
        at_limit = [i for i in range(n) if step + 1 >= limits[active[i]]]
        if len(eos_rows) or at_limit:
            src_row = (offsets + top_beam).tolist()
            ts, tt = top_scores.tolist(), top_token.tolist()

            def candidate(i: int, c: int, extra: list[int], eos: bool) -> Hypothesis:
                row, b = src_row[i][c], active[i]
                attn = None if so_far is None else so_far[row, :, : src_len[b]].float().cpu()
                return ending(history[row].tolist() + extra, ts[i][c], alpha, eos, attn)

            for i, c in zip(eos_rows.tolist(), eos_cols.tolist()):
                finished[active[i]].append(candidate(i, c, [], True))
            for i in at_limit:  # the limit cuts these off: the top K candidates end here, </s> or not
                finished[active[i]] += [candidate(i, c, [tt[i][c]], False) for c in range(beam)
                                        if math.isfinite(ts[i][c]) and tt[i][c] != EOS_ID]
        best_ended = is_eos[:, 0].tolist()
        going = [i for i in range(n) if not beam_done(step + 1, limits[active[i]], len(finished[active[i]]), beam,
                                                      nbest, best_ended[i], early_stop)]
        if not going:
            break
        # The K best candidates that do not end in </s> carry on.
        alive_scores = top_scores.masked_fill(is_eos, float("-inf"))
        keep_scores, keep = alive_scores.topk(beam, dim=-1)  # [n, K]
        order = offsets + top_beam.gather(1, keep)  # [n, K]: which old row each new beam extends
        keep_token = top_token.gather(1, keep)
        if len(going) < n:  # drop the sentences that are done
            index = torch.tensor(going, device=device)
            order, keep_scores, keep_token = order[index], keep_scores[index], keep_token[index]
            memory = memory.select(index)
            active = [active[i] for i in going]
        order = order.view(-1)
        scores = keep_scores
        history = torch.cat([history.index_select(0, order), keep_token.view(-1, 1)], dim=1)
        if so_far is not None:
            attn_history = so_far.index_select(0, order)
        tokens = keep_token.view(-1, 1)
        state = state.select(order)
    return [best_first(finished[b], nbest) for b in range(batch)]


def search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, settings: SearchSettings,
           generator: torch.Generator | None = None) -> list[list[Hypothesis]]:
    """Search one padded batch (src: [B, S], on the model's device) as ``settings`` say."""
    limit = max_lengths(src_lengths - 1, settings.max_length_ratio, settings.max_length_extra)
    if settings.sampling:
        if generator is None:
            generator = torch.Generator(device=src.device).manual_seed(settings.seed)
        return sample_search(model, src, src_lengths, limit, settings.nbest, settings.length_penalty,
                             settings.temperature, settings.top_k, settings.top_p, generator, settings.attention)
    return beam_search(model, src, src_lengths, limit, settings.beam, settings.length_penalty, settings.nbest,
                       settings.attention, settings.early_stop)


def translate_ids(
    model: Seq2Seq, sources: Sequence[Sequence[int]], settings: SearchSettings, device: torch.device,
) -> list[list[Hypothesis]]:
    """Search for every source (token ids without </s>), in length-sorted batches; results in input order."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    generator = torch.Generator(device=device).manual_seed(settings.seed) if settings.sampling else None
    for start in range(0, len(order), settings.batch_size):
        chunk = order[start:start + settings.batch_size]
        src, lengths = source_tensor([sources[i] for i in chunk])
        hyps = search(model, src.to(device), lengths, settings, generator)
        for i, h in zip(chunk, hyps):
            results[i] = h
    return results
