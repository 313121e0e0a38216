"""The training step's forward: teacher forcing (or scheduled sampling) and the loss of one batch.

Training feeds truth: the decoder sees the gold previous tokens ``<s> y1 .. y_{n-1}`` and is
trained to predict ``y1 .. y_n </s>``. Padding positions are dropped before the output
projection, so they cost nothing and never enter the loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.token_ids import PAD_ID
from ..data.batching import Batch
from ..decoding.torch_backend import TorchBackend
from ..fast.fused_loss import projected_cross_entropy
from ..model.seq2seq import Seq2Seq
from ..search import algorithms


class BatchLoss(torch.nn.Module):
    """The summed loss of a batch as a module, so DistributedDataParallel can wrap it."""

    def __init__(self, model: Seq2Seq, label_smoothing: float) -> None:
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, batch: Batch, teacher_forcing: float) -> torch.Tensor:
        return batch_loss(self.model, batch, self.label_smoothing, teacher_forcing)


class ScheduledSampling:
    """Training's token feedback, a :class:`~seq2seq.search.algorithms.Strategy` for the search loop:
    every row runs every target step, and the next step is fed the gold previous token with
    probability ``ratio``, else the model's own greedy prediction (scheduled sampling). The
    step's logits [B, V] are kept, with their graph, for the loss."""

    def __init__(self, gold_previous: torch.Tensor, ratio: float) -> None:
        self.gold_previous, self.ratio = gold_previous, ratio  # [B, T], starting with <s>
        self.longest = gold_previous.size(1)
        self.logits: list[torch.Tensor] = []
        self.step = 0

    def advance(self, step: int, scores: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        self.step = step
        self.logits.append(scores)
        return torch.full((scores.size(0),), step + 1 < self.longest, dtype=torch.bool)

    def carry_on(self, keep: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        gold = self.gold_previous[:, self.step + 1]
        predicted = self.logits[-1].detach().argmax(dim=-1)
        use_gold = torch.rand(gold.shape, device=gold.device) < self.ratio
        return torch.where(use_gold | (gold == PAD_ID), gold, predicted), None


def scheduled_sampling_logits(model: Seq2Seq, batch: Batch, ratio: float) -> torch.Tensor:
    """Logits [B, T, V] with scheduled sampling (:class:`ScheduledSampling`), run by the search loop."""
    strategy = ScheduledSampling(batch.prev_tokens, ratio)
    algorithms.run(TorchBackend(model, batch.src.device), batch.src, batch.src_lengths, strategy)
    return torch.stack(strategy.logits, dim=1)


def batch_loss(model: Seq2Seq, batch: Batch, label_smoothing: float, teacher_forcing: float = 1.0) -> torch.Tensor:
    """Summed cross-entropy over the non-pad target positions of one batch."""
    if teacher_forcing < 1.0:
        mask = batch.gold != PAD_ID
        logits = scheduled_sampling_logits(model, batch, teacher_forcing)
        return F.cross_entropy(logits[mask], batch.gold[mask], label_smoothing=label_smoothing, reduction="sum")
    # teacher forcing: the decoder computes the real positions only, and only those are projected
    kept, positions = model.teacher_forced(batch.src, batch.src_lengths, batch.prev_tokens, batch.tgt_lengths)
    gold = batch.gold.reshape(-1)[positions]
    if kept.device.type != "cpu" or torch.is_autocast_enabled("cpu"):  # the fused loss: CPU, fp32 only
        return F.cross_entropy(model.generator(kept).float(), gold, label_smoothing=label_smoothing, reduction="sum")
    return projected_cross_entropy(kept, model.generator.weight, model.generator.bias, gold, label_smoothing)
