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
sentence read one copy of its memory. Everything a search keeps, the hypotheses that have
ended included, stays on the model's device; each step the host waits for one small tensor
(which sentences go on) and loops over no sentence.

Every hypothesis carries its total log-probability under the model (``</s>``
included when emitted) and the score it is ranked by, ``log_prob / lp`` with the
GNMT length penalty ``lp = ((5 + steps) / 6) ** alpha``, where ``steps`` counts the
tokens and the ``</s>``. With ``attention`` asked for, it also carries the attention
weights of each step over the source tokens.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from ..core.search_rules import Hypothesis, beam_done, best_first, ending, length_penalty, output_limit
from ..core.devices import on_host
from ..core.search_settings import SearchSettings
from ..data.batching import source_tensor
from ..data.token_ids import BOS_ID, EOS_ID
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
    if vocab < 4 * chunk or k * chunk >= vocab or logits.device.type != "cpu":  # a GPU's topk is one kernel
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
    weights_all = torch.zeros(batch, steps_max, src.size(1), device=device) if attention else None
    log_prob = torch.zeros(batch, dtype=torch.float32, device=device)
    length = torch.zeros(batch, dtype=torch.long, device=device)  # tokens chosen, </s> included
    ended = torch.zeros(batch, dtype=torch.bool, device=device)  # emitted </s> (not cut off by the limit)
    rows = torch.arange(batch, device=device)  # the sentence of each row still decoding
    row_limit = limit.to(device, non_blocking=True)
    tokens = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=device)
    for step in range(steps_max):
        features, state, weights = model.decoder(tokens, state, memory)
        logits = model.generator(features[:, -1]).float()  # [rows, V]
        chosen = choose(logits)
        log_prob[rows] += token_log_probs(logits, chosen.unsqueeze(1)).squeeze(1)
        out[rows, step] = chosen
        length[rows] = step + 1
        if weights_all is not None and weights is not None:
            weights_all[rows, step] = weights[:, -1].float()
        is_eos = chosen == EOS_ID
        ended[rows] = is_eos
        going = on_host(~is_eos & (step + 1 < row_limit))  # the one value the host waits for each step
        if not bool(going.any()):
            break
        if not bool(going.all()):
            keep = going.nonzero().squeeze(1).to(device, non_blocking=True)
            rows, row_limit, chosen = rows[keep], row_limit[keep], chosen[keep]
            state, memory = state.select(keep), memory.select(keep)
        tokens = chosen.unsqueeze(1)
    hyps = []
    weights_all = None if weights_all is None else weights_all.cpu()
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


class Finished:
    """The hypotheses that have ended, for every sentence of a batch, kept on the search's device:
    each sentence's ``nbest`` best by score (ties: the one that ended first) and how many ended."""

    def __init__(self, batch: int, nbest: int, longest: int, source_length: int, attention: bool,
                 device: torch.device) -> None:
        self.score = torch.full((batch, nbest), float("-inf"), dtype=torch.float64, device=device)
        self.log_prob = torch.zeros(batch, nbest, device=device)
        self.tokens = torch.full((batch, nbest, longest), EOS_ID, dtype=torch.long, device=device)
        self.length = torch.zeros(batch, nbest, dtype=torch.long, device=device)  # tokens, </s> not counted
        self.ended = torch.zeros(batch, nbest, dtype=torch.bool, device=device)  # with </s> (else cut off)
        self.valid = torch.zeros(batch, nbest, dtype=torch.bool, device=device)
        self.attention = (torch.zeros(batch, nbest, longest, source_length, device=device) if attention
                          else None)  # one row per step (the </s> step included)
        self.count = torch.zeros(batch, dtype=torch.long, device=device)  # every hypothesis that ended

    def add(self, sentences: Tensor, score: Tensor, log_prob: Tensor, tokens: Tensor, length: Tensor,
            ended: Tensor, valid: Tensor, attention: Tensor | None) -> None:
        """Candidates [n, C] of the sentences ``sentences`` [n] (``valid`` marks the real ones, in
        the order they end); tokens [n, C, t], attention [n, C, steps, S]."""
        nbest, longest = self.score.size(1), self.tokens.size(2)
        self.count.index_add_(0, sentences, valid.sum(dim=1))
        pooled_valid = torch.cat([self.valid[sentences], valid], dim=1)  # [n, nbest + C]
        key = torch.cat([self.score[sentences], score], dim=1).masked_fill(~pooled_valid, float("-inf"))
        best = key.sort(dim=1, descending=True, stable=True).indices[:, :nbest]  # the earlier of equals first

        def keep(old: Tensor, new: Tensor) -> Tensor:
            pooled = torch.cat([old[sentences], new], dim=1)
            return pooled.gather(1, best.view(*best.shape, *[1] * (pooled.dim() - 2)).expand(
                *best.shape, *pooled.shape[2:]))

        padded = torch.full((*tokens.shape[:2], longest), EOS_ID, dtype=torch.long, device=tokens.device)
        padded[:, :, :tokens.size(2)] = tokens
        self.tokens[sentences] = keep(self.tokens, padded)
        self.score[sentences] = keep(self.score, score)
        self.log_prob[sentences] = keep(self.log_prob, log_prob)
        self.length[sentences] = keep(self.length, length)
        self.ended[sentences] = keep(self.ended, ended)
        self.valid[sentences] = keep(self.valid, valid)
        if self.attention is not None and attention is not None:
            rows = torch.zeros(*attention.shape[:2], longest, attention.size(3), device=attention.device)
            rows[:, :, :attention.size(2)] = attention
            self.attention[sentences] = keep(self.attention, rows)

    def hypotheses(self, source_lengths: list[int], nbest: int) -> list[list[Hypothesis]]:
        """Per sentence, its ``nbest`` best, best first (:func:`~seq2seq.core.search_rules.best_first`)."""
        columns = [t.tolist() for t in (self.score, self.log_prob, self.tokens, self.length, self.ended, self.valid)]
        attention = None if self.attention is None else self.attention.float().cpu()
        results = []
        for b, (scores, log_probs, tokens, lengths, ended, valid) in enumerate(zip(*columns)):
            kept = []
            for slot in range(len(scores)):
                if valid[slot]:
                    steps = lengths[slot] + (1 if ended[slot] else 0)
                    attn = None if attention is None else attention[b, slot, :steps, :source_lengths[b]]
                    kept.append(Hypothesis(tokens[slot][:lengths[slot]], scores[slot], log_probs[slot], attn,
                                           ended[slot]))
            results.append(best_first(kept, nbest))
        return results


@torch.inference_mode()
def batched_beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, beam: int, alpha: float, nbest: int = 1,
    attention: bool = False, early_stop: bool = True,
) -> list[list[Hypothesis]]:
    """Beam search over the whole batch as one (B * K) tensor, its state kept on the model's device.

    Each step ranks every sentence's candidates at once, records the hypotheses that end in
    :class:`Finished` (on the device too) and asks :func:`~seq2seq.core.search_rules.beam_done`'s
    rule of all sentences at once; the host reads one small tensor per step (which sentences go
    on) and has no loop over sentences or hypotheses. Done sentences leave the batch, so the
    rest run on fewer rows.
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
    longest = int(limit.max())
    finished = Finished(batch, nbest, longest, src.size(1), attention and model.decoder.attention is not None,
                        device)
    # The first step runs on one row per sentence (its K beams are all <s>), then the K part ways.
    tokens = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=device)
    active = torch.arange(batch, device=device)  # the sentence of each block of K rows
    limits = limit.to(device, non_blocking=True)  # of the active sentences
    for step in range(longest):
        n = active.size(0)
        offsets = (torch.arange(n, device=device) * beam).unsqueeze(1)  # [n, 1]
        features, state, weights = model.decoder(tokens, state, memory)
        logits = model.generator(features[:, -1]).float()  # [n*K, V]
        if step == 0:  # K rows per sentence from now on, all reading its one memory entry
            logits, state = logits.index_select(0, expand), state.select(expand)
            weights = None if weights is None else weights.index_select(0, expand)
        so_far = None  # each row's attention, this step's included
        if finished.attention is not None and weights is not None:
            so_far = weights if attn_history is None else torch.cat([attn_history, weights], dim=1)
        top_scores, top_beam, top_token = top_candidates(scores, logits, beam, 2 * beam)  # [n, 2K]
        is_eos = top_token == EOS_ID
        # Hypotheses ending here: an </s> among a sentence's top K candidates (its tokens: the
        # beam's history), and, where the length limit is reached, every other live one of the top
        # K (the history and its token). Either has taken step + 1 steps.
        live = torch.isfinite(top_scores[:, :beam])
        at_limit = (step + 1 >= limits).unsqueeze(1)  # [n, 1]
        ending_here = torch.cat([is_eos[:, :beam] & live, ~is_eos[:, :beam] & live & at_limit], dim=1)
        # On a CPU reading a value costs nothing, so the steps where nothing ends skip the bookkeeping.
        if device.type != "cpu" or bool(ending_here.any()):
            rows = offsets + top_beam[:, :beam]  # [n, K]
            prefix = history[rows.view(-1)].view(n, beam, step)
            log_prob = top_scores[:, :beam]
            finished.add(
                active,
                score=(log_prob.double() / length_penalty(step + 1, alpha)).repeat(1, 2),
                log_prob=log_prob.repeat(1, 2),
                tokens=torch.cat([torch.cat([prefix, top_token[:, :beam, None]], dim=2)] * 2, dim=1),
                length=torch.tensor([step, step + 1], device=device).repeat_interleave(beam).expand(n, 2 * beam),
                ended=torch.arange(2 * beam, device=device).lt(beam).expand(n, 2 * beam),
                valid=ending_here,
                attention=None if so_far is None else so_far[rows.view(-1)].view(n, beam, step + 1, -1).repeat(
                    1, 2, 1, 1),
            )
        done = beam_done(step + 1, limits, finished.count[active], beam, nbest, is_eos[:, 0], early_stop)
        going = on_host(~done)  # the one value the host waits for each step
        if not bool(going.any()):
            break
        # The K best candidates that do not end in </s> carry on.
        alive_scores = top_scores.masked_fill(is_eos, float("-inf"))
        keep_scores, keep = alive_scores.topk(beam, dim=-1)  # [n, K]
        order = offsets + top_beam.gather(1, keep)  # [n, K]: which old row each new beam extends
        keep_token = top_token.gather(1, keep)
        if not bool(going.all()):  # drop the sentences that are done
            index = going.nonzero().squeeze(1).to(device, non_blocking=True)
            order, keep_scores, keep_token = order[index], keep_scores[index], keep_token[index]
            memory, active, limits = memory.select(index), active[index], limits[index]
        order = order.view(-1)
        scores = keep_scores
        history = torch.cat([history.index_select(0, order), keep_token.view(-1, 1)], dim=1)
        if so_far is not None:
            attn_history = so_far.index_select(0, order)
        tokens = keep_token.view(-1, 1)
        state = state.select(order)
    return finished.hypotheses(src_lengths.tolist(), nbest)


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
