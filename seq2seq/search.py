"""Inference feeds itself: greedy search, sampling and batched beam search.

All start from ``<s>`` and the bridged encoder state, feed each chosen token back
in, and stop at ``</s>`` or at the length limit
``ceil(max_length_ratio * source_length) + max_length_extra``.

Greedy search takes the most likely token at each step; sampling draws it from the
softmax at a temperature, optionally cut to the ``top_k`` most likely tokens and to
the smallest set whose probability reaches ``top_p`` (nucleus sampling). Beam search
keeps the whole batch as one ``(B * K)`` tensor: at each step the ``K * V``
continuations of every sentence are ranked at once with ``topk``, and the decoder
state and memory are reordered by ``index_select`` (no Python loop over hypotheses).

Every hypothesis carries its total log-probability under the model (``</s>``
included when emitted) and the score it is ranked by, ``log_prob / lp`` with the
GNMT length penalty ``lp = ((5 + steps) / 6) ** alpha``, where ``steps`` counts the
tokens and the ``</s>``. With ``attention`` asked for, it also carries the attention
weights of each step over the source tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .model import Seq2Seq
from .subwords import BOS_ID, EOS_ID


@dataclass
class Hypothesis:
    tokens: list[int]  # without <s> and </s>
    score: float  # the ranking score: log_prob / length penalty
    log_prob: float  # total log-probability under the model (</s> included when emitted)
    attention: Tensor | None = None  # [steps, source tokens + </s>]: one row per output token (and </s>)
    ended: bool = True  # emitted </s> (False: cut off by the length limit)


def max_lengths(src_lengths: Tensor, ratio: float, extra: int) -> Tensor:
    """Longest output allowed per sentence: ceil(ratio * source tokens) + extra (>= 1)."""
    return (torch.ceil(src_lengths.double() * ratio).long() + extra).clamp(min=1)


def length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


Chooser = Callable[[Tensor], Tensor]  # logits [N, V] -> chosen token ids [N]


def most_likely(logits: Tensor) -> Tensor:
    return logits.argmax(dim=-1)


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

    src: [B, S]; src_lengths: [B]; limit: [B] max output tokens.
    """
    batch, device = src.size(0), src.device
    memory, state = model.encode(src, src_lengths)
    tokens = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=device)
    limit = limit.to(device)
    outputs, step_weights = [], []
    log_prob = torch.zeros(batch, dtype=torch.float32, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    ended = torch.zeros(batch, dtype=torch.bool, device=device)  # emitted </s> (not cut off by the limit)
    for step in range(int(limit.max())):
        features, state, weights = model.decoder(tokens, state, memory)
        logits = model.generator(features[:, -1]).float()  # [B, V]
        chosen = choose(logits).masked_fill(finished, EOS_ID)
        logp = torch.log_softmax(logits, dim=-1).gather(1, chosen.unsqueeze(1)).squeeze(1)
        log_prob += logp.masked_fill(finished, 0.0)
        outputs.append(chosen)
        if attention and weights is not None:
            step_weights.append(weights[:, -1])
        ended |= ~finished & (chosen == EOS_ID)
        finished |= (chosen == EOS_ID) | (step + 1 >= limit)
        tokens = chosen.unsqueeze(1)
        if bool(finished.all()):
            break
    ids = torch.stack(outputs, dim=1).tolist() if outputs else [[] for _ in range(batch)]
    weights_all = torch.stack(step_weights, dim=1).cpu() if step_weights else None  # [B, T, S]
    hyps = []
    for b, (row, lp, eos) in enumerate(zip(ids, log_prob.tolist(), ended.tolist())):
        length = row.index(EOS_ID) if EOS_ID in row else len(row)
        steps = length + 1 if eos else length
        attn = None if weights_all is None else weights_all[b, :steps, : int(src_lengths[b])]
        hyps.append(Hypothesis(row[:length], lp / length_penalty(steps, alpha), lp, attn, eos))
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
    return [sorted(hyps[b * count:(b + 1) * count], key=lambda h: h.score, reverse=True)
            for b in range(src.size(0))]


@torch.inference_mode()
def beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, beam: int, alpha: float, nbest: int = 1,
    attention: bool = False,
) -> list[list[Hypothesis]]:
    """Per sentence, its ``nbest`` best hypotheses, best first (greedy search when beam = nbest = 1)."""
    if beam == 1 and nbest == 1:
        return [[h] for h in greedy_search(model, src, src_lengths, limit, alpha, attention)]
    return batched_beam_search(model, src, src_lengths, limit, beam, alpha, nbest, attention)


@torch.inference_mode()
def batched_beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, beam: int, alpha: float, nbest: int = 1,
    attention: bool = False,
) -> list[list[Hypothesis]]:
    """Beam search over the whole batch as one (B * K) tensor."""
    nbest = min(nbest, beam)
    device = src.device
    batch = src.size(0)
    memory, state = model.encode(src, src_lengths)
    rows = torch.arange(batch, device=device).repeat_interleave(beam)  # [B*K]: sentence of each beam
    memory, state = memory.select(rows), state.select(rows)
    # scores[b, k]: log-probability of beam k of sentence b; only beam 0 is alive at the start.
    scores = torch.full((batch, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.full((batch * beam, 0), BOS_ID, dtype=torch.long, device=device)
    attn_history: Tensor | None = None  # [B*K, t, S] when attention is asked for
    src_len = src_lengths.tolist()
    tokens = torch.full((batch * beam, 1), BOS_ID, dtype=torch.long, device=device)
    limits = limit.tolist()
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch
    offsets = (torch.arange(batch, device=device) * beam).unsqueeze(1)  # [B, 1]
    for step in range(max(limits)):
        features, state, weights = model.decoder(tokens, state, memory)
        logp = torch.log_softmax(model.generator(features[:, -1]).float(), dim=-1)  # [B*K, V]
        if attention and weights is not None:  # this step's weights appended to each beam's so far
            so_far = weights if attn_history is None else torch.cat([attn_history, weights], dim=1)
        else:
            so_far = None

        def attn_of(row: int, b: int) -> Tensor | None:
            return None if so_far is None else so_far[row, :, : src_len[b]].cpu()

        vocab = logp.size(-1)
        candidates = (scores.unsqueeze(-1) + logp.view(batch, beam, vocab)).view(batch, beam * vocab)
        top_scores, top_index = candidates.topk(2 * beam, dim=-1)  # [B, 2K]
        top_beam = torch.div(top_index, vocab, rounding_mode="floor")
        top_token = top_index % vocab
        is_eos = top_token == EOS_ID
        # Record hypotheses ending here: an </s> among a sentence's top K candidates,
        # and every live beam of a sentence whose length limit is reached.
        eos_rows, eos_cols = torch.nonzero(is_eos[:, :beam] & torch.isfinite(top_scores[:, :beam]), as_tuple=True)
        at_limit = [b for b in range(batch) if not done[b] and step + 1 >= limits[b]]
        if len(eos_rows) or at_limit:
            hist = history.tolist()
            src_beam = (offsets + top_beam).tolist()
            ts = top_scores.tolist()
            for b, c in zip(eos_rows.tolist(), eos_cols.tolist()):
                if not done[b]:
                    seq = hist[src_beam[b][c]]
                    finished[b].append(Hypothesis(seq, ts[b][c] / length_penalty(len(seq) + 1, alpha), ts[b][c],
                                                  attn_of(src_beam[b][c], b)))
            tt = top_token.tolist()
            for b in at_limit:  # the limit cuts these off: the top K candidates end here, </s> or not
                for c in range(beam):
                    if math.isfinite(ts[b][c]) and tt[b][c] != EOS_ID:
                        seq = hist[src_beam[b][c]] + [tt[b][c]]
                        finished[b].append(Hypothesis(seq, ts[b][c] / length_penalty(len(seq), alpha), ts[b][c],
                                                      attn_of(src_beam[b][c], b), ended=False))
                done[b] = True
        for b in range(batch):
            if not done[b] and len(finished[b]) >= beam:
                done[b] = True
        if all(done):
            break
        # The K best candidates that do not end in </s> carry on.
        alive_scores = top_scores.masked_fill(is_eos, float("-inf"))
        keep_scores, keep = alive_scores.topk(beam, dim=-1)  # [B, K]
        keep_beam = top_beam.gather(1, keep)
        keep_token = top_token.gather(1, keep)
        order = (offsets + keep_beam).view(-1)  # which old beam each new beam extends
        done_mask = torch.tensor(done, device=device).unsqueeze(1)
        scores = keep_scores.masked_fill(done_mask, float("-inf"))
        history = torch.cat([history.index_select(0, order), keep_token.view(-1, 1)], dim=1)
        if so_far is not None:
            attn_history = so_far.index_select(0, order)
        tokens = keep_token.view(-1, 1)
        state = state.select(order)
    results = []
    for b in range(batch):
        ranked = sorted(finished[b], key=lambda h: h.score, reverse=True)
        results.append(ranked[:nbest] if ranked else [Hypothesis([], float("-inf"), float("-inf"), ended=False)])
    return results
