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

from .activations import tanh, tanh_from_doubled_


@dataclass(frozen=True)
class UnrolledShape:
    """What kind of step is unrolled (the non-tensor arguments)."""

    cell: str  # lstm | gru
    attention: str  # bahdanau (queried with the previous state, context into the gates) | luong (after the step)
    context_gate_size: int  # G with Bahdanau (the first G columns of the values), else 0


def unrolled_decoder(shape: UnrolledShape, shares: Tensor, h0: Tensor, c0: Tensor | None, feed0: Tensor | None,
                     keys: Tensor, values: Tensor, mask: Tensor, w_query: Tensor | None, energy: Tensor | None,
                     w_feed: Tensor | None, w_hidden: Tensor, b_hidden: Tensor, w_combine: Tensor,
                     lengths: list[int] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Run T teacher-forced steps. shares: [N, T, G], every step's embedding share of the
    gates (with b_ih); h0, c0: [N, H]; feed0 [N, H], the fed-back vector before step 0 (input
    feeding, else None); keys [N, S, A]; values [N, S, X]; mask [N, S] (True
    at real tokens); w_query [A, H] and energy [A] (Bahdanau); w_feed [G, H] (input feeding,
    else None); w_hidden [G, H], b_hidden [G]; w_combine [H, H]; lengths: each row's number of
    steps (host ints, non-increasing, as ``make_batch`` orders rows), or None for T each.
    Returns features [N, T, H], attention weights [N, T, S] (both zero past a row's length), and
    the state after each row's last step: h [N, H] and c (LSTM)."""
    inputs = (shares, h0, c0, feed0, keys, values, mask, w_query, energy, w_feed, w_hidden, b_hidden, w_combine)
    # the forward keeps what only the backward needs only when there will be one
    for_backward = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    active = active_rows(lengths, shares.size(0), shares.size(1))
    features, weights, h_last, c_last = _Unrolled.apply(shape, for_backward, active, lengths, *inputs)
    return features, weights, h_last, (c_last if shape.cell == "lstm" else None)


def active_rows(lengths: list[int] | None, rows: int, steps: int) -> list[int]:
    """How many rows (a prefix: rows sorted by length, longest first) are still running at each
    step. Rows past their length are not computed: under teacher forcing their steps only feed
    padding positions, which the loss never reads."""
    if lengths is None:
        return [rows] * steps
    if len(lengths) != rows or any(a < b for a, b in zip(lengths, lengths[1:])) or not 0 < lengths[0] <= steps:
        raise ValueError(f"unrolled_decoder: lengths must be {rows} non-increasing counts in 1..{steps}")
    active, row = [], rows
    for t in range(steps):
        while row and lengths[row - 1] <= t:
            row -= 1
        active.append(row)
    return active


class _Unrolled(torch.autograd.Function):
    """Buffers: ``xh[t] = [feed before step t; h before step t]`` ([T + 1, N, F + H], F = H with
    input feeding, else 0), so an LSTM step's feed and hidden shares are one product with
    ``[W_feed, W_hidden]``. For the backward, the forward also keeps each step's local
    derivatives, computed for all steps at once after the loop: the LSTM's
    ``d c_t / d gates`` (and ``d h_t / d o``), ``d h_t / d c_t`` (o tanh'(c_t)), and the
    features' tanh slope.

    Step t computes only its ``active[t]`` running rows (the first ones); buffers that the
    products over all steps read are zero elsewhere."""

    @staticmethod
    def forward(ctx, shape: UnrolledShape, for_backward: bool, active: list[int],  # type: ignore[override]
                lengths: list[int] | None, shares: Tensor, h0: Tensor,
                c0: Tensor | None, feed0: Tensor | None, keys: Tensor, values: Tensor, mask: Tensor,
                w_query: Tensor | None, energy: Tensor | None, w_feed: Tensor | None, w_hidden: Tensor,
                b_hidden: Tensor, w_combine: Tensor):
        n, steps, gate_size = shares.shape
        hidden, source = h0.size(1), keys.size(1)
        lstm, bahdanau = shape.cell == "lstm", shape.attention == "bahdanau"
        g = shape.context_gate_size
        feed_size = 0 if w_feed is None else w_feed.size(1)
        new = shares.new_empty
        partial = active[-1] < n  # some rows end early: what they skip must read as zero
        fill = shares.new_zeros if partial else new
        xh = fill(steps + 1, n, feed_size + hidden)
        hs = xh[:, :, feed_size:]  # hs[t] = h before step t
        hs[0] = h0
        # feats[t + 1] = step t's features; with input feeding they are the next step's feed
        feats = xh[:, :, :feed_size] if feed_size else fill(steps + 1, n, hidden)
        feats[0] = 0 if feed0 is None else feed0
        weights = fill(n, steps, source)
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
        # tanh as 2 sigmoid(2x) - 1 (seq2seq/activations.py): the products that feed a tanh come out
        # doubled, from doubled weights and value columns (the features' tanh, the LSTM's candidate)
        w_hidden_t, w_combine_t = w_hidden.t(), w_combine.t() * 2
        w_feed_t = None if w_feed is None else w_feed.t()
        candidate = slice(2 * hidden, 3 * hidden)  # the LSTM's tanh gate
        # the values the forward mixes (the backward reads the model's): the combine share
        # doubled, and with Bahdanau and an LSTM the context's share of the candidate gate too
        column_scale = values.new_ones(values.size(2))
        column_scale[g:] = 2
        if lstm and g:
            column_scale[candidate] = 2
        if lstm:
            shares = shares + b_hidden  # b_hh joins b_ih once, not every step
            shares[..., candidate] *= 2
            w_xh = torch.cat([w_feed, w_hidden], dim=1) if w_feed is not None else w_hidden.clone()
            w_xh[candidate] *= 2
            w_xh_t = w_xh.t()
        mixing = values * column_scale
        for t in range(steps):
            m = active[t]
            h = hs[t, :m]
            gates = torch.addmm(shares[:m, t], xh[t, :m], w_xh_t) if lstm else shares[:m, t].clone()
            if bahdanau:
                z = torch.add(doubled_keys[:m], (h @ doubled_query).unsqueeze(1), out=sigmoids[t, :m]).sigmoid_()
                if m < n:
                    sigmoids[t, m:] = 0
                scores = torch.matmul(z, energy2)
                a = torch.softmax(scores.masked_fill_(blocked[:m], float("-inf")), dim=-1)
                weights[:m, t] = a
                mixed = torch.bmm(a.unsqueeze(1), mixing[:m]).squeeze(1)
                gates += mixed[:, :g]
                context_share = mixed[:, g:]
            if lstm:
                act = acts[t, :m]
                torch.sigmoid(gates, out=act)
                act[:, candidate].mul_(2).sub_(1)  # sigmoid(2 g) -> tanh(g)
                i, f, cell, o = act.chunk(4, dim=1)
                c = torch.addcmul(f * cs[t, :m], i, cell, out=cs[t + 1, :m])
                torch.mul(o, tanh(c, out=tanh_c[t, :m]), out=hs[t + 1, :m])
            else:
                if w_feed_t is not None:
                    gates.addmm_(feats[t, :m], w_feed_t)
                hg = torch.addmm(b_hidden, h, w_hidden_t)
                act = acts[t, :m]
                torch.sigmoid(gates[:, :2 * hidden] + hg[:, :2 * hidden], out=act[:, :2 * hidden])
                r, z_gate = act[:, :hidden], act[:, hidden:2 * hidden]
                hidden_n[t, :m] = hg[:, 2 * hidden:]
                cand = tanh(torch.addcmul(gates[:, 2 * hidden:], r, hidden_n[t, :m]), out=act[:, 2 * hidden:])
                torch.addcmul(cand, z_gate, h - cand, out=hs[t + 1, :m])
            if not bahdanau:  # Luong: the new state queries the memory
                scores = torch.bmm(hs[t + 1, :m].unsqueeze(1), keys[:m].transpose(1, 2)).squeeze(1)
                a = torch.softmax(scores.masked_fill_(blocked[:m], float("-inf")), dim=-1)
                weights[:m, t] = a
                context_share = torch.bmm(a.unsqueeze(1), mixing[:m]).squeeze(1)
            tanh_from_doubled_(torch.addmm(context_share, hs[t + 1, :m], w_combine_t), out=feats[t + 1, :m])
        ctx.shape, ctx.feed_size, ctx.active, ctx.partial = shape, feed_size, active, partial
        ctx.has_c0, ctx.has_feed0 = c0 is not None, feed0 is not None
        ctx.mark_non_differentiable(weights)
        features = feats[1:].transpose(0, 1).contiguous()
        if lengths is None:
            h_last = hs[steps].clone(memory_format=torch.contiguous_format)
            c_last = cs[steps].clone() if cs is not None else h0.new_empty(0)
        else:  # each row's state after its own last step
            ends, rows = torch.tensor(lengths, device=h0.device), torch.arange(n, device=h0.device)
            h_last = hs[ends, rows]
            c_last = cs[ends, rows] if cs is not None else h0.new_empty(0)
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
        active: list[int] = ctx.active
        lstm, bahdanau = shape.cell == "lstm", shape.attention == "bahdanau"
        g, feed_size = shape.context_gate_size, ctx.feed_size
        steps, n, gate_size = acts.shape
        hidden = xh.size(2) - feed_size
        hs, feeds = xh[:, :, feed_size:], xh[:, :, :feed_size]  # feeds: empty without input feeding
        fill = xh.new_zeros if ctx.partial else xh.new_empty  # read by the products over all steps
        d_input = fill(steps, n, gate_size)  # d(gates), input side: the shares', the feed's and the context's
        d_hidden_side = d_input if lstm else fill(steps, n, gate_size)  # d(W_hh h + b_hh)
        d_pre = fill(steps, n, hidden)  # d(W_c h + context share), before tanh
        d_mixed = fill(n, steps, values.size(2))  # d(weights @ values) per step
        d_scores = fill(steps, n, keys.size(1))  # d(attention scores) per step
        d_query = fill(steps, n, w_query.size(0)) if bahdanau else None  # d(W_q h)
        d_keys_acc = torch.zeros_like(keys) if bahdanau else None
        # Running gradients, one row per sentence; step t updates its active rows in place. A row
        # joins at its last step with the gradient of the final state it returned (rows are
        # sorted longest first, so it is untouched until then). An LSTM's product over
        # [W_feed, W_hidden] writes d(feed) and d(h) side by side into one buffer.
        lstm_feed = lstm and feed_size > 0
        d_state = xh.new_zeros(n, feed_size + hidden if lstm_feed else hidden)
        d_h = d_state[:, feed_size:] if lstm_feed else d_state
        d_feed = d_state[:, :feed_size] if lstm_feed else xh.new_zeros(n, hidden)
        if d_h_last is not None:
            d_h.copy_(d_h_last)
        d_c = None
        if lstm:
            d_c = torch.zeros_like(d_h) if d_c_last is None or d_c_last.numel() == 0 else d_c_last.clone()
        if d_features is None:
            d_features = torch.zeros(n, steps, hidden, dtype=xh.dtype, device=xh.device)
        sloped_features = d_features.transpose(0, 1) * feature_slope  # [T, N, H]
        w_xh = torch.cat([w_feed, w_hidden], dim=1) if lstm_feed else w_hidden
        # (d(weights) = values @ d(mixed) is computed as d(mixed)^T values^T: the same product,
        # about 10x faster on CPU than bmm with a one-column right side)
        for t in reversed(range(steps)):
            m = active[t]
            dh = d_h[:m]
            pre = torch.addcmul(sloped_features[t, :m], d_feed[:m], feature_slope[t, :m], out=d_pre[t, :m])
            dh.addmm_(pre, w_combine)
            if bahdanau:
                d_mixed[:m, t, g:] = pre
            else:
                d_mixed[:m, t] = pre
                a = weights[:m, t]
                da = torch.bmm(pre.unsqueeze(1), values[:m].transpose(1, 2)).squeeze(1)
                ds = torch.mul(a, da - (a * da).sum(-1, keepdim=True), out=d_scores[t, :m])  # softmax backward
                dh.add_(torch.bmm(ds.unsqueeze(1), keys[:m]).squeeze(1))
            if lstm:
                dc = d_c[:m]
                dc.addcmul_(dh, carry[t, :m])
                torch.mul(gate_slope[t, :m, :3 * hidden].view(m, 3, hidden), dc.unsqueeze(1),
                          out=d_input[t, :m, :3 * hidden].view(m, 3, hidden))
                torch.mul(gate_slope[t, :m, 3 * hidden:], dh, out=d_input[t, :m, 3 * hidden:])
                dc.mul_(acts[t, :m, hidden:2 * hidden])
                torch.mm(d_input[t, :m], w_xh, out=d_state[:m])  # d(h) and d(feed) before step t
            else:
                r, z, cand = acts[t, :m].chunk(3, dim=1)
                dr, dz, dn = d_input[t, :m].chunk(3, dim=1)
                d_cand = torch.mul(dh * (1 - z), 1 - cand * cand, out=dn)
                torch.mul(dh * (hs[t, :m] - cand), z * (1 - z), out=dz)
                torch.mul(d_cand * hidden_n[t, :m], r * (1 - r), out=dr)
                d_hidden_side[t, :m, :2 * hidden] = d_input[t, :m, :2 * hidden]
                torch.mul(d_cand, r, out=d_hidden_side[t, :m, 2 * hidden:])
                dh.copy_(torch.addmm(dh * z, d_hidden_side[t, :m], w_hidden))
                if w_feed is not None:
                    torch.mm(d_input[t, :m], w_feed, out=d_feed[:m])
            if bahdanau:
                d_mixed[:m, t, :g] = d_input[t, :m]
                a = weights[:m, t]
                da = torch.bmm(d_mixed[:m, t].unsqueeze(1), values[:m].transpose(1, 2)).squeeze(1)
                ds = torch.mul(a, da - (a * da).sum(-1, keepdim=True), out=d_scores[t, :m]).unsqueeze(1)  # [m, 1, S]
                z = sigmoids[t, :m]
                slope = torch.addcmul(z, z, z, value=-1)  # sigmoid' = z (1 - z)
                # u = 2 W_q h + k (k = 2 U s), scores = (2v)^T sigmoid(u) - sum(v):
                # d(W_q h) = 4 v * sum_s ds z'(u), d(k) = 2 v * ds z'(u)
                torch.mul(torch.bmm(ds, slope).squeeze(1), energy * 4, out=d_query[t, :m])
                d_keys_acc[:m].addcmul_(slope, ds.transpose(1, 2))
                dh.addmm_(d_query[t, :m], w_query)
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
        d_feed0 = d_feed.clone() if ctx.has_feed0 else None
        return (None, None, None, None, d_shares, d_h.clone(), d_c0, d_feed0, d_keys, d_values, None, d_w_query,
                d_energy, d_w_feed, d_w_hidden, d_b_hidden, d_w_combine)
