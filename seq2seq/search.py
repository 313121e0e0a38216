"""Inference feeds itself: greedy and batched beam search.

Both start from ``<s>`` and the bridged encoder state, feed each predicted token
back in, and stop at ``</s>`` or at the length limit
``ceil(max_length_ratio * source_length) + max_length_extra``.

Beam search keeps the whole batch as one ``(B * K)`` tensor: at each step the
``K * V`` continuations of every sentence are ranked at once with ``topk``, and the
decoder state and memory are reordered by ``index_select`` (no Python loop over
hypotheses). Finished hypotheses are ranked by ``log p / lp`` with the GNMT length
penalty ``lp = ((5 + len) / 6) ** alpha``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .model import Seq2Seq
from .subwords import BOS_ID, EOS_ID


@dataclass
class Hypothesis:
    tokens: list[int]  # without <s> and </s>
    score: float  # the ranking score: log-probability / length penalty
    log_prob: float  # total log-probability (</s> included when emitted)


def max_lengths(src_lengths: Tensor, ratio: float, extra: int) -> Tensor:
    """Longest output allowed per sentence: ceil(ratio * source tokens) + extra (>= 1)."""
    return (torch.ceil(src_lengths.double() * ratio).long() + extra).clamp(min=1)


def length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


@torch.inference_mode()
def greedy_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor) -> list[Hypothesis]:
    """src: [B, S]; src_lengths: [B]; limit: [B] max output tokens. One hypothesis per sentence."""
    batch = src.size(0)
    memory, state = model.encode(src, src_lengths)
    tokens = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=src.device)
    limit = limit.to(src.device)
    outputs = []
    log_prob = torch.zeros(batch, dtype=torch.float32, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    for step in range(int(limit.max())):
        features, state, _ = model.decoder(tokens, state, memory)
        logp = torch.log_softmax(model.generator(features[:, -1]).float(), dim=-1)
        best_logp, best = logp.max(dim=-1)
        best = best.masked_fill(finished, EOS_ID)
        log_prob += best_logp.masked_fill(finished, 0.0)
        outputs.append(best)
        finished |= (best == EOS_ID) | (step + 1 >= limit)
        tokens = best.unsqueeze(1)
        if bool(finished.all()):
            break
    ids = torch.stack(outputs, dim=1).tolist() if outputs else [[] for _ in range(batch)]
    hyps = []
    for row, lp in zip(ids, log_prob.tolist()):
        seq = row[: row.index(EOS_ID)] if EOS_ID in row else row
        hyps.append(Hypothesis(seq, lp, lp))
    return hyps


@torch.inference_mode()
def beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, beam: int, alpha: float, nbest: int = 1,
) -> list[list[Hypothesis]]:
    """Per sentence, its ``nbest`` best hypotheses, best first (greedy search when beam = nbest = 1)."""
    if beam == 1 and nbest == 1:
        return [[h] for h in greedy_search(model, src, src_lengths, limit)]
    return batched_beam_search(model, src, src_lengths, limit, beam, alpha, nbest)


@torch.inference_mode()
def batched_beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, limit: Tensor, beam: int, alpha: float, nbest: int = 1,
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
    tokens = torch.full((batch * beam, 1), BOS_ID, dtype=torch.long, device=device)
    limits = limit.tolist()
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch
    offsets = (torch.arange(batch, device=device) * beam).unsqueeze(1)  # [B, 1]
    for step in range(max(limits)):
        features, state, _ = model.decoder(tokens, state, memory)
        logp = torch.log_softmax(model.generator(features[:, -1]).float(), dim=-1)  # [B*K, V]
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
                    finished[b].append(Hypothesis(seq, ts[b][c] / length_penalty(len(seq) + 1, alpha), ts[b][c]))
            tt = top_token.tolist()
            for b in at_limit:  # the limit cuts these off: the top K candidates end here, </s> or not
                for c in range(beam):
                    if math.isfinite(ts[b][c]) and tt[b][c] != EOS_ID:
                        seq = hist[src_beam[b][c]] + [tt[b][c]]
                        finished[b].append(Hypothesis(seq, ts[b][c] / length_penalty(len(seq), alpha), ts[b][c]))
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
        tokens = keep_token.view(-1, 1)
        state = state.select(order)
    results = []
    for b in range(batch):
        ranked = sorted(finished[b], key=lambda h: h.score, reverse=True)
        results.append(ranked[:nbest] if ranked else [Hypothesis([], float("-inf"), float("-inf"))])
    return results
