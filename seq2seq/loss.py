"""The output projection and the (label-smoothed) cross-entropy as one autograd function.

``logits = features W^T + b`` is the largest tensor of a training step (target tokens x
vocabulary). Computed apart, the projection writes it, log-softmax writes a second one of
the same size, and the backward allocates a zeroed one-hot and a third for the gradient.
Here the logits buffer is turned into exp(logits - max) in place, kept, and turned into
the gradient in place in the backward: one [N, V] buffer for the whole step.

    loss_n = (1 - eps) (lse_n - z_gold) + eps (lse_n - mean_v z_v),   lse_n = log sum_v exp z_v
    d loss_n / d z_v = softmax(z)_v - (1 - eps) [v = gold] - eps / V

which is ``F.cross_entropy(z, gold, label_smoothing=eps, reduction="sum")``
(``tests/test_loss.py`` checks value and gradients against it).
"""
from __future__ import annotations

import torch
from torch import Tensor


def projected_cross_entropy(features: Tensor, weight: Tensor, bias: Tensor | None, gold: Tensor,
                            label_smoothing: float = 0.0) -> Tensor:
    """Summed cross-entropy of ``features [N, H] @ weight[V, H]^T + bias`` against ``gold [N]``."""
    return _ProjectedCrossEntropy.apply(features, weight, bias, gold, label_smoothing)


class _ProjectedCrossEntropy(torch.autograd.Function):

    @staticmethod
    def forward(ctx, features: Tensor, weight: Tensor, bias: Tensor | None, gold: Tensor,  # type: ignore[override]
                smoothing: float) -> Tensor:
        logits = features @ weight.t() if bias is None else torch.addmm(bias, features, weight.t())
        gold_logit = logits.gather(1, gold.unsqueeze(1)).squeeze(1)
        top = logits.amax(dim=1, keepdim=True)
        exps = logits.sub_(top).exp_()  # in place: the logits are not needed again
        sums = exps.sum(dim=1)
        lse = sums.log() + top.squeeze(1)
        loss = (lse - gold_logit).sum() * (1 - smoothing)
        if smoothing:
            # sum_v z_v = features . sum_v W_v + sum_v b_v: no pass over [N, V]
            logit_sums = features @ weight.sum(0) + (0 if bias is None else bias.sum())
            loss = loss + smoothing * (lse - logit_sums / weight.size(0)).sum()
        ctx.smoothing, ctx.has_bias = smoothing, bias is not None
        ctx.save_for_backward(features, weight, gold, exps, sums)
        return loss

    @staticmethod
    def backward(ctx, d_loss: Tensor):  # type: ignore[override]
        features, weight, gold, exps, sums = ctx.saved_tensors
        smoothing = ctx.smoothing
        grad = exps.mul_((d_loss / sums).unsqueeze(1))  # in place: softmax * d_loss
        if smoothing:
            grad.sub_(d_loss * smoothing / weight.size(0))
        rows = torch.arange(grad.size(0), device=grad.device)
        grad[rows, gold] -= d_loss * (1 - smoothing)
        d_features = grad @ weight if ctx.needs_input_grad[0] else None
        d_weight = grad.t() @ features if ctx.needs_input_grad[1] else None
        d_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return d_features, d_weight, d_bias, None, None
