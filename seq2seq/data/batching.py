"""Token-based batches with length bucketing, and padding into tensors.

Sentences are sorted by source, then target length (ties broken by a seeded shuffle)
and cut into batches of at most ``batch_tokens`` padded target tokens, so a batch holds sentences
of nearly equal length and little padding is computed. The order of batches is
shuffled per epoch with a seed derived from (seed, epoch): reproducible and
independent of anything else's random state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.token_ids import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """src: [B, S] ids ending in </s>; src_lengths: [B] (CPU); prev_tokens: [B, T] = <s> + target;
    gold: [B, T] = target + </s> (PAD elsewhere); tgt_lengths: each row's non-pad entries of
    gold (host ints; ``make_batch`` puts rows longest target first, so that the decoder can
    stop computing rows as they end)."""

    src: Tensor
    src_lengths: Tensor
    prev_tokens: Tensor
    gold: Tensor
    tgt_lengths: list[int]

    @property
    def n_tokens(self) -> int:
        """Non-pad entries of gold: the target tokens the loss is summed over."""
        return sum(self.tgt_lengths)

    def to(self, device: torch.device, non_blocking: bool = False) -> "Batch":
        """On ``device`` (``src_lengths`` stays on the host). ``non_blocking``: the copies do not
        wait (from :meth:`pinned` memory, the host goes on while the GPU copies)."""
        return Batch(self.src.to(device, non_blocking=non_blocking), self.src_lengths,
                     self.prev_tokens.to(device, non_blocking=non_blocking),
                     self.gold.to(device, non_blocking=non_blocking), self.tgt_lengths)

    def pinned(self) -> "Batch":
        """In page-locked host memory, which a GPU copies from without the host waiting (CUDA only)."""
        return Batch(self.src.pin_memory(), self.src_lengths, self.prev_tokens.pin_memory(), self.gold.pin_memory(),
                     self.tgt_lengths)


def token_batches(
    src_lengths: Sequence[int], tgt_lengths: Sequence[int], batch_tokens: int, seed: int, epoch: int,
    shuffle: bool = True,
) -> list[np.ndarray]:
    """Indices of each batch. Padded target tokens per batch (with </s>) stay <= batch_tokens,
    except that a single over-long sentence forms a batch of its own."""
    n = len(tgt_lengths)
    rng = np.random.default_rng([seed, epoch])
    # int32 throughout (the same values, half the memory: tens of millions of pairs are a GB at int64).
    tie_break = rng.permutation(n).astype(np.int32) if shuffle else np.arange(n, dtype=np.int32)
    tgt = np.asarray(tgt_lengths, dtype=np.int32) + 1
    src = np.asarray(src_lengths, dtype=np.int32) + 1
    # Sorted by source length first: most batches then hold sources of one length, which
    # the encoder runs without packing; target length second keeps target padding low.
    order = np.lexsort((tie_break, tgt, src)).astype(np.int32)
    del tie_break, src
    batches: list[np.ndarray] = []
    start = 0
    longest = 0
    for block in range(0, n, 1 << 20):  # the lengths in order, as Python ints a block at a time
        for pos, length in enumerate(tgt[order[block:block + (1 << 20)]].tolist(), start=block):
            longest_if_added = max(longest, length)
            if pos > start and longest_if_added * (pos - start + 1) > batch_tokens:
                batches.append(order[start:pos])
                start, longest = pos, length
            else:
                longest = longest_if_added
    if start < n:
        batches.append(order[start:n])
    if shuffle:
        permutation = rng.permutation(len(batches))
        batches = [batches[i] for i in permutation]
    return batches


def pad(seqs: Sequence[Sequence[int] | np.ndarray], prefix: int | None = None, suffix: int | None = None) -> Tensor:
    """Right-pad id sequences into a [B, max_len] int64 tensor, adding optional prefix/suffix ids."""
    extra = (prefix is not None) + (suffix is not None)
    longest = max((len(s) for s in seqs), default=0) + extra
    out = np.full((len(seqs), max(longest, 1)), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        col = 0
        if prefix is not None:
            out[row, 0] = prefix
            col = 1
        out[row, col:col + len(seq)] = seq
        if suffix is not None:
            out[row, col + len(seq)] = suffix
    return torch.from_numpy(out)


def source_tensor(seqs: Sequence[Sequence[int] | np.ndarray]) -> tuple[Tensor, Tensor]:
    """Sources as the encoder takes them: ids + </s>, padded; and their lengths."""
    lengths = torch.tensor([len(s) + 1 for s in seqs], dtype=torch.int64)
    return pad(seqs, suffix=EOS_ID), lengths


def make_batch(src: Sequence[np.ndarray], tgt: Sequence[np.ndarray]) -> Batch:
    """A batch of these pairs, rows ordered by target length, longest first (ties keep their order)."""
    order = sorted(range(len(tgt)), key=lambda row: -len(tgt[row]))
    src, tgt = [src[row] for row in order], [tgt[row] for row in order]
    src_tensor, src_lengths = source_tensor(src)
    prev_tokens = pad(tgt, prefix=BOS_ID)
    gold = pad(tgt, suffix=EOS_ID)
    tgt_lengths = [len(t) + 1 for t in tgt]
    return Batch(src_tensor, src_lengths, prev_tokens, gold, tgt_lengths)
