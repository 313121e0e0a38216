"""The step-by-step decoder under teacher forcing, as one autograd function with a hand-written backward.

Training feeds truth, so all T steps of a one-layer step-by-step decoder (Bahdanau attention,
or input feeding) can run inside one function: the forward loop keeps what the backward
needs in preallocated [T, ...] buffers, and the backward runs the steps in reverse
(backpropagation through time) with only the products that must be per step inside the
loop. Every weight's gradient is one large product over all T steps at the end, where
autograd would make T small products and T accumulations, and the attention's
[N, S, A] gradients are reduced with batched products instead of materialised.

The arithmetic is :class:`seq2seq.model.Decoder`'s step loop (``tests/test_unrolled.py``
checks outputs and every gradient against it). Dropout is outside (on the embeddings
before and on the features after), so nothing here is random.

Names: N rows, T steps, S source positions, H hidden, G gate rows (4H LSTM, 3H GRU),
A attention size (Bahdanau keys come doubled, 2 U s_j, as the model keeps them), X value
width (G + H with Bahdanau: the context's gate share and its combine share; H with Luong).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class UnrolledShape:
    """What kind of step is unrolled (the non-tensor arguments)."""

    cell: str  # lstm | gru
    attention: str  # bahdanau (queried with the previous state, context into the gates) | luong (after the step)
    context_gate_size: int  # G with Bahdanau (the first G columns of the values), else 0


def unrolled_decoder(shape: UnrolledShape, shares: Tensor, h0: Tensor, c0: Tensor | None, feed0: Tensor | None,
                     keys: Tensor, values: Tensor, mask: Tensor, w_query: Tensor | None, energy: Tensor | None,
                     w_feed: Tensor | None, w_hidden: Tensor, b_hidden: Tensor, w_combine: Tensor
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Run T teacher-forced steps. shares: [N, T, G], every step's embedding share of the
    gates (with b_ih); h0, c0: [N, H]; feed0 [N, H], the fed-back vector before step 0 (input
    feeding, else None); keys [N, S, A]; values [N, S, X]; mask [N, S] (True
    at real tokens); w_query [A, H] and energy [A] (Bahdanau); w_feed [G, H] (input feeding,
    else None); w_hidden [G, H], b_hidden [G]; w_combine [H, H].
    Returns features [N, T, H], attention weights [N, T, S], h_T [N, H] and c_T (LSTM)."""
    inputs = (shares, h0, c0, feed0, keys, values, mask, w_query, energy, w_feed, w_hidden, b_hidden, w_combine)
    # the forward keeps what only the backward needs only when there will be one
    for_backward = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    features, weights, h_last, c_last = _Unrolled.apply(shape, for_backward, *inputs)
    return features, weights, h_last, (c_last if shape.cell == "lstm" else None)


class _Unrolled(torch.autograd.Function):
    """Buffers: ``xh[t] = [feed before step t; h before step t]`` ([T + 1, N, F + H], F = H with
    input feeding, else 0), so an LSTM step's feed and hidden shares are one product with
    ``[W_feed, W_hidden]``. For the backward, the forward also keeps each step's local
    derivatives, computed for all steps at once after the loop: the LSTM's
    ``d c_t / d gates`` (and ``d h_t / d o``), ``d h_t / d c_t`` (o tanh'(c_t)), and the
    features' tanh slope."""

    @staticmethod
    def forward(ctx, shape: UnrolledShape, for_backward: bool, shares: Tensor, h0: Tensor,  # type: ignore[override]
                c0: Tensor | None, feed0: Tensor | None, keys: Tensor, values: Tensor, mask: Tensor,
                w_query: Tensor | None, energy: Tensor | None, w_feed: Tensor | None, w_hidden: Tensor,
                b_hidden: Tensor, w_combine: Tensor):
        n, steps, gate_size = shares.shape
        hidden, source = h0.size(1), keys.size(1)
        lstm, bahdanau = shape.cell == "lstm", shape.attention == "bahdanau"
        g = shape.context_gate_size
        feed_size = 0 if w_feed is None else w_feed.size(1)
        new = shares.new_empty
        xh = new(steps + 1, n, feed_size + hidden)
        hs = xh[:, :, feed_size:]  # hs[t] = h before step t
        hs[0] = h0
        # feats[t + 1] = step t's features; with input feeding they are the next step's feed
        feats = xh[:, :, :feed_size] if feed_size else new(steps + 1, n, hidden)
        feats[0] = 0 if feed0 is None else feed0
        weights = new(n, steps, source)
        acts = new(steps, n, gate_size)  # LSTM: i, f, g, o after their nonlinearity; GRU: r, z, n
        cs = new(steps + 1, n, hidden) if lstm else None  # LSTM cell states, cs[t] before step t
        tanh_c = new(steps, n, hidden) if lstm else None
        hidden_n = None if lstm else new(steps, n, hidden)  # GRU: W_hn h + b_hn, multiplied by r
        if cs is not None:
            assert c0 is not None
            cs[0] = c0
        blocked = ~mask
        sigmoids = doubled_keys = doubled_query = energy2 = None
        if bahdanau:
            assert w_query is not None and energy is not None
            # v^T tanh(q + k) = (2v)^T sigmoid(2q + 2k) - sum(v), as BahdanauAttention computes it
            sigmoids = new(steps, n, source, keys.size(2))
            doubled_keys, doubled_query, energy2 = keys, w_query.t() * 2, energy * 2
        w_hidden_t, w_combine_t = w_hidden.t(), w_combine.t()
        w_feed_t = None if w_feed is None else w_feed.t()
        if lstm:
            shares = shares + b_hidden  # b_hh joins b_ih once, not every step
            w_xh_t = (torch.cat([w_feed, w_hidden], dim=1) if w_feed is not None else w_hidden).t()
        for t in range(steps):
            h = hs[t]
            gates = torch.addmm(shares[:, t], xh[t], w_xh_t) if lstm else shares[:, t].clone()
            if bahdanau:
                z = torch.add(doubled_keys, (h @ doubled_query).unsqueeze(1), out=sigmoids[t]).sigmoid_()
                scores = torch.matmul(z, energy2)
                a = torch.softmax(scores.masked_fill_(blocked, float("-inf")), dim=-1)
                weights[:, t] = a
                mixed = torch.bmm(a.unsqueeze(1), values).squeeze(1)
                gates += mixed[:, :g]
                context_share = mixed[:, g:]
            if lstm:
                act = acts[t]
                torch.sigmoid(gates, out=act)
                torch.tanh(gates[:, 2 * hidden:3 * hidden], out=act[:, 2 * hidden:3 * hidden])
                i, f, cell, o = act.chunk(4, dim=1)
                c = torch.addcmul(f * cs[t], i, cell, out=cs[t + 1])
                torch.mul(o, torch.tanh(c, out=tanh_c[t]), out=hs[t + 1])
            else:
                if w_feed_t is not None:
                    gates.addmm_(feats[t], w_feed_t)
                hg = torch.addmm(b_hidden, h, w_hidden_t)
                act = acts[t]
                torch.sigmoid(gates[:, :2 * hidden] + hg[:, :2 * hidden], out=act[:, :2 * hidden])
                r, z_gate = act[:, :hidden], act[:, hidden:2 * hidden]
                hidden_n[t] = hg[:, 2 * hidden:]
                cand = torch.tanh(torch.addcmul(gates[:, 2 * hidden:], r, hidden_n[t]), out=act[:, 2 * hidden:])
                torch.addcmul(cand, z_gate, h - cand, out=hs[t + 1])
            if not bahdanau:  # Luong: the new state queries the memory
                scores = torch.bmm(hs[t + 1].unsqueeze(1), keys.transpose(1, 2)).squeeze(1)
                a = torch.softmax(scores.masked_fill_(blocked, float("-inf")), dim=-1)
                weights[:, t] = a
                context_share = torch.bmm(a.unsqueeze(1), values).squeeze(1)
            torch.tanh(torch.addmm(context_share, hs[t + 1], w_combine_t), out=feats[t + 1])
        ctx.shape, ctx.feed_size = shape, feed_size
        ctx.has_c0, ctx.has_feed0 = c0 is not None, feed0 is not None
        ctx.mark_non_differentiable(weights)
        features = feats[1:].transpose(0, 1).contiguous()
        h_last = hs[steps].clone(memory_format=torch.contiguous_format)
        c_last = cs[steps].clone() if cs is not None else h0.new_empty(0)
        if not for_backward:
            return features, weights, h_last, c_last
        feature_slope = 1 - feats[1:] * feats[1:]  # tanh' of the features
        carry = gate_slope = None
        if lstm:
            i, f, cell, o = acts.chunk(4, dim=2)
            gate_slope = torch.empty_like(acts)  # d gates: i, f, g by d c; o by d h
            torch.mul(cell * i, 1 - i, out=gate_slope[..., :hidden])
            torch.mul(cs[:steps] * f, 1 - f, out=gate_slope[..., hidden:2 * hidden])
            torch.mul(i, 1 - cell * cell, out=gate_slope[..., 2 * hidden:3 * hidden])
            torch.mul(tanh_c * o, 1 - o, out=gate_slope[..., 3 * hidden:])
            carry = o * (1 - tanh_c * tanh_c)  # d h_t / d c_t
        ctx.save_for_backward(keys, values, w_query, energy, w_feed, w_hidden, w_combine, xh, weights, acts,
                              feature_slope, gate_slope, carry, hidden_n, sigmoids)
        return features, weights, h_last, c_last

    @staticmethod
    def backward(ctx, d_features: Tensor, _d_weights: Tensor, d_h_last: Tensor | None,  # type: ignore[override]
                 d_c_last: Tensor | None):
        (keys, values, w_query, energy, w_feed, w_hidden, w_combine, xh, weights, acts, feature_slope,
         gate_slope, carry, hidden_n, sigmoids) = ctx.saved_tensors
        shape: UnrolledShape = ctx.shape
        lstm, bahdanau = shape.cell == "lstm", shape.attention == "bahdanau"
        g, feed_size = shape.context_gate_size, ctx.feed_size
        steps, n, gate_size = acts.shape
        hidden = xh.size(2) - feed_size
        hs, feeds = xh[:, :, feed_size:], xh[:, :, :feed_size]  # feeds: empty without input feeding
        new = xh.new_empty
        d_input = new(steps, n, gate_size)  # d(gates), input side: the shares', the feed's and the context's
        d_hidden_side = d_input if lstm else new(steps, n, gate_size)  # d(W_hh h + b_hh)
        d_pre = new(steps, n, hidden)  # d(W_c h + context share), before tanh
        d_mixed = new(n, steps, values.size(2))  # d(weights @ values) per step
        d_scores = new(steps, n, keys.size(1))  # d(attention scores) per step
        d_query = new(steps, n, w_query.size(0)) if bahdanau else None  # d(W_q h)
        d_keys_acc = torch.zeros_like(keys) if bahdanau else None
        d_h = torch.zeros_like(hs[0]) if d_h_last is None else d_h_last.clone()
        d_c = None
        if lstm:
            d_c = torch.zeros_like(hs[0]) if d_c_last is None or d_c_last.numel() == 0 else d_c_last.clone()
        d_feed = torch.zeros_like(hs[0])
        if d_features is None:
            d_features = torch.zeros(n, steps, hidden, dtype=xh.dtype, device=xh.device)
        sloped_features = d_features.transpose(0, 1) * feature_slope  # [T, N, H]
        w_xh = torch.cat([w_feed, w_hidden], dim=1) if lstm and w_feed is not None else w_hidden
        # (d(weights) = values @ d(mixed) is computed as d(mixed)^T values^T: the same product,
        # about 10x faster on CPU than bmm with a one-column right side)
        for t in reversed(range(steps)):
            pre = torch.addcmul(sloped_features[t], d_feed, feature_slope[t], out=d_pre[t])
            d_h = torch.addmm(d_h, pre, w_combine)
            if bahdanau:
                d_mixed[:, t, g:] = pre
            else:
                d_mixed[:, t] = pre
                a = weights[:, t]
                da = torch.bmm(pre.unsqueeze(1), values.transpose(1, 2)).squeeze(1)
                ds = torch.mul(a, da - (a * da).sum(-1, keepdim=True), out=d_scores[t])  # softmax backward
                d_h = d_h + torch.bmm(ds.unsqueeze(1), keys).squeeze(1)
            if lstm:
                d_c = torch.addcmul(d_c, d_h, carry[t])
                torch.mul(gate_slope[t, :, :3 * hidden].view(n, 3, hidden), d_c.unsqueeze(1),
                          out=d_input[t, :, :3 * hidden].view(n, 3, hidden))
                torch.mul(gate_slope[t, :, 3 * hidden:], d_h, out=d_input[t, :, 3 * hidden:])
                d_c = d_c * acts[t, :, hidden:2 * hidden]
                d_xh = d_input[t] @ w_xh
                d_h = d_xh[:, feed_size:]
                if feed_size:
                    d_feed = d_xh[:, :feed_size]
            else:
                r, z, cand = acts[t].chunk(3, dim=1)
                dr, dz, dn = d_input[t].chunk(3, dim=1)
                d_cand = torch.mul(d_h * (1 - z), 1 - cand * cand, out=dn)
                torch.mul(d_h * (hs[t] - cand), z * (1 - z), out=dz)
                torch.mul(d_cand * hidden_n[t], r * (1 - r), out=dr)
                d_hidden_side[t, :, :2 * hidden] = d_input[t, :, :2 * hidden]
                torch.mul(d_cand, r, out=d_hidden_side[t, :, 2 * hidden:])
                d_h = torch.addmm(d_h * z, d_hidden_side[t], w_hidden)
                if w_feed is not None:
                    d_feed = d_input[t] @ w_feed
            if bahdanau:
                d_mixed[:, t, :g] = d_input[t]
                a = weights[:, t]
                da = torch.bmm(d_mixed[:, t].unsqueeze(1), values.transpose(1, 2)).squeeze(1)
                ds = torch.mul(a, da - (a * da).sum(-1, keepdim=True), out=d_scores[t]).unsqueeze(1)  # [N, 1, S]
                z = sigmoids[t]
                slope = torch.addcmul(z, z, z, value=-1)  # sigmoid' = z (1 - z)
                # u = 2 W_q h + k (k = 2 U s), scores = (2v)^T sigmoid(u) - sum(v):
                # d(W_q h) = 4 v * sum_s ds z'(u), d(k) = 2 v * ds z'(u)
                torch.mul(torch.bmm(ds, slope).squeeze(1), energy * 4, out=d_query[t])
                d_keys_acc.addcmul_(slope, ds.transpose(1, 2))
                d_h = torch.addmm(d_h, d_query[t], w_query)
        flat = steps * n
        d_shares = d_input.transpose(0, 1)
        d_b_hidden = d_hidden_side.view(flat, -1).sum(0)
        if lstm:
            d_w_xh = d_input.view(flat, -1).t() @ xh[:steps].reshape(flat, -1)
            d_w_feed = d_w_xh[:, :feed_size] if w_feed is not None else None
            d_w_hidden = d_w_xh[:, feed_size:]
        else:
            d_w_hidden = d_hidden_side.view(flat, -1).t() @ hs[:steps].reshape(flat, hidden)
            d_w_feed = None if w_feed is None else d_input.view(flat, -1).t() @ feeds[:steps].reshape(flat, hidden)
        d_w_combine = d_pre.view(flat, hidden).t() @ hs[1:].reshape(flat, hidden)
        d_values = torch.bmm(weights.transpose(1, 2), d_mixed)
        d_energy = None
        if bahdanau:
            d_keys = d_keys_acc.mul_(energy * 2)
            d_w_query = d_query.view(flat, -1).t() @ hs[:steps].reshape(flat, hidden)
            # d(scores)/d(v) = 2 sigmoid(u) (the - sum(v) term's gradient, -sum(ds), is 0: ds sums to 0 per row)
            d_energy = (d_scores.view(1, -1) @ sigmoids.view(-1, sigmoids.size(-1))).squeeze(0) * 2
        else:
            d_keys = torch.bmm(d_scores.permute(1, 2, 0), hs[1:].transpose(0, 1))
            d_w_query = None
        d_c0 = d_c if ctx.has_c0 else None
        d_feed0 = d_feed if ctx.has_feed0 else None
        return (None, None, d_shares, d_h, d_c0, d_feed0, d_keys, d_values, None, d_w_query, d_energy, d_w_feed,
                d_w_hidden, d_b_hidden, d_w_combine)
