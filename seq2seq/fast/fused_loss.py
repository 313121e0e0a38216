"""The output projection and the (label-smoothed) cross-entropy as one autograd function.

``logits = features W^T + b`` is the largest tensor of a training step (target tokens x
vocabulary). Computed apart, the projection writes it, log-softmax writes a second one of
the same size, and the backward allocates a zeroed one-hot and a third for the gradient.
Here the logits buffer is turned into the softmax in place (one pass of PyTorch's row-wise
kernel), kept, and has the gold one-hot subtracted in place in the backward, which scales
the products' results rather than the buffer: one [N, V] buffer and no other pass over it.
The log-normaliser comes from the gold entry: lse = z_gold - log p_gold; a row whose p_gold
underflows has its logits recomputed to take it exactly.

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


_TINY = 1e-30  # far above float32's smallest normal (1.2e-38), below any probability that matters


def _logits(features: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return features @ weight.t() if bias is None else torch.addmm(bias, features, weight.t())


class _ProjectedCrossEntropy(torch.autograd.Function):

    @staticmethod
    def forward(ctx, features: Tensor, weight: Tensor, bias: Tensor | None, gold: Tensor,  # type: ignore[override]
                smoothing: float) -> Tensor:
        logits = _logits(features, weight, bias)
        gold_logit = logits.gather(1, gold.unsqueeze(1)).squeeze(1)
        probs = torch.softmax(logits, dim=1, out=logits)  # in place: the logits are not needed again
        gold_prob = probs.gather(1, gold.unsqueeze(1)).squeeze(1)
        lse = gold_logit - gold_prob.log()
        tiny = gold_prob < _TINY  # log p_gold has lost its precision (or is -inf): take lse exactly
        if bool(tiny.any()):
            rows = tiny.nonzero().squeeze(1)
            lse[rows] = torch.logsumexp(_logits(features[rows], weight, bias), dim=1)
        loss = (lse - gold_logit).sum() * (1 - smoothing)
        weight_sum = weight.sum(0) if smoothing else None  # sum_v W_v: the backward needs it too
        if smoothing:
            # sum_v z_v = features . sum_v W_v + sum_v b_v: no pass over [N, V]
            logit_sums = features @ weight_sum + (0 if bias is None else bias.sum())
            loss = loss + smoothing * (lse - logit_sums / weight.size(0)).sum()
        ctx.smoothing, ctx.has_bias = smoothing, bias is not None
        ctx.save_for_backward(features, weight, gold, probs, weight_sum)
        return loss

    @staticmethod
    def backward(ctx, d_loss: Tensor):  # type: ignore[override]
        features, weight, gold, probs, weight_sum = ctx.saved_tensors
        smoothing = ctx.smoothing
        # d loss / d z = d_loss (softmax - (1 - eps) onehot - eps / V). Only the one-hot term is
        # applied to the [N, V] buffer (in place, N entries); d_loss and the constant eps / V are
        # applied to the products' much smaller results instead of in two passes over [N, V]:
        # (G - c) @ W = G @ W - c sum_v W_v, and (G - c)^T F = G^T F - c sum_n F_n for every v.
        grad = probs
        rows = torch.arange(grad.size(0), device=grad.device)
        grad[rows, gold] -= 1 - smoothing
        constant = smoothing / weight.size(0)
        d_features = d_weight = d_bias = None
        if ctx.needs_input_grad[0]:
            d_features = grad @ weight
            if smoothing:
                d_features.sub_(weight_sum, alpha=constant)
            d_features.mul_(d_loss)
        if ctx.needs_input_grad[1]:
            d_weight = grad.t() @ features
            if smoothing:
                d_weight.sub_(features.sum(0), alpha=constant)
            d_weight.mul_(d_loss)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            d_bias = grad.sum(0).sub_(constant * grad.size(0)).mul_(d_loss)
        return d_features, d_weight, d_bias, None, None
