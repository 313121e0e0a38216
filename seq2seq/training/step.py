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
from ..fast.fused_loss import projected_cross_entropy
from ..model.seq2seq import Seq2Seq


class BatchLoss(torch.nn.Module):
    """The summed loss of a batch as a module, so DistributedDataParallel can wrap it."""

    def __init__(self, model: Seq2Seq, label_smoothing: float) -> None:
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, batch: Batch, teacher_forcing: float) -> torch.Tensor:
        return batch_loss(self.model, batch, self.label_smoothing, teacher_forcing)


def decoder_features(model: Seq2Seq, batch: Batch, ratio: float) -> torch.Tensor:
    """Features [B, T, H] with teacher forcing: the gold previous token with probability ``ratio``,
    else the model's own greedy prediction from the step before (scheduled sampling).

    At ratio 1.0 the whole target goes through the decoder in one call (the fast path).
    """
    if ratio >= 1.0:
        return model(batch.src, batch.src_lengths, batch.prev_tokens, batch.tgt_lengths)
    memory, state = model.encode(batch.src, batch.src_lengths)
    prev = batch.prev_tokens[:, :1]
    steps = []
    for t in range(batch.prev_tokens.size(1)):
        features, state, _ = model.decoder(prev, state, memory)
        steps.append(features)
        if t + 1 < batch.prev_tokens.size(1):
            gold = batch.prev_tokens[:, t + 1:t + 2]
            with torch.no_grad():
                predicted = model.generator(features).argmax(dim=-1)
            use_gold = torch.rand(gold.shape, device=gold.device) < ratio
            prev = torch.where(use_gold | (gold == PAD_ID), gold, predicted)
    return torch.cat(steps, dim=1)


def batch_loss(model: Seq2Seq, batch: Batch, label_smoothing: float, teacher_forcing: float = 1.0) -> torch.Tensor:
    """Summed cross-entropy over the non-pad target positions of one batch."""
    if teacher_forcing >= 1.0:  # the decoder computes the real positions only
        kept, positions = model.teacher_forced(batch.src, batch.src_lengths, batch.prev_tokens, batch.tgt_lengths)
        gold = batch.gold.reshape(-1)[positions]
    else:
        features = decoder_features(model, batch, teacher_forcing)  # [B, T, H]
        mask = batch.gold != PAD_ID
        kept, gold = features[mask], batch.gold[mask]  # [N, H]: padding positions are never projected
    if kept.device.type != "cpu" or torch.is_autocast_enabled("cpu"):  # the fused loss: CPU, fp32 only
        return F.cross_entropy(model.generator(kept).float(), gold, label_smoothing=label_smoothing, reduction="sum")
    return projected_cross_entropy(kept, model.generator.weight, model.generator.bias, gold, label_smoothing)
