"""The step-by-step decoder under teacher forcing, as one autograd function with a hand-written backward.

Training feeds truth, so all T steps of a one-layer step-by-step decoder (Bahdanau attention,
or input feeding) can run inside one function: the forward loop keeps what the backward
needs in preallocated buffers, and the backward runs the steps in reverse
(backpropagation through time) with only the products that must be per step inside the
loop. Every weight's gradient is one large product over all steps at the end, where
autograd would make T small products and T accumulations, and the attention's
[N, S, A] gradients are reduced with batched products instead of materialised.

Each row runs only its own steps: the buffers are packed, time-major, one block of rows per
step (:class:`StepLayout`), so neither the loop nor the products over all steps compute the
target padding of a batch.

The arithmetic is :class:`seq2seq.model.decoder.Decoder`'s step loop (``tests/test_unrolled.py``
checks outputs and every gradient against it). Dropout is outside (on the embeddings
before and on the features after), so nothing here is random.

Names: N rows, T steps, S source positions, H hidden, G gate rows (4H LSTM, 3H GRU),
A attention size (Bahdanau keys come doubled, 2 U s_j), X value width (G + H with Bahdanau:
the context's gate share and its combine share, side by side; H with Luong).

:class:`UnrolledSteps` runs it for a decoder (:class:`~seq2seq.fast.variants.CpuDecoder`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..model.attention import Memory
from ..model.decoder import Decoder, DecoderState
from ..model.recurrence import State
from .projected import ProjectedMemory


@dataclass(frozen=True)
class UnrolledShape:
    """What kind of step is unrolled (the non-tensor arguments)."""

    cell: str  # lstm | gru
    attention: str  # bahdanau (queried with the previous state, context into the gates) | luong (after the step)
    context_gate_size: int  # G with Bahdanau (the first G columns of the values), else 0


@dataclass(frozen=True)
class StepLayout:
    """Where T teacher-forced steps keep their rows when each row runs only its own number of steps.

    Rows are sorted longest first, so step t runs the first ``active[t]`` rows (m_t). Everything
    is time-major and packed, as in a PackedSequence, in blocks of rows:

    * the states: block 0 holds the N initial states, block t + 1 the m_t states after step t
      (``starts`` are the T + 2 block offsets). Step t reads the first m_t rows of block t;
      the others there are the final states of the rows that ended at step t - 1.
    * the inputs (the embeddings' gate shares, the gates' gradients): blocks 0 .. T - 1 of
      the same offsets, ``input_rows`` in all. Step t's are the first m_t rows of block t;
      the rest, one per row that has ended, are padding and zero where it matters.
    * the outputs (features, and what the backward keeps per step): step t's m_t rows, one
      block after the other, ``output_rows`` = the number of real target positions.

    So a product over all steps (an input projection, a weight's gradient) reads no padding
    beyond one row per sentence, and a step's rows are a contiguous block.
    """

    lengths: tuple[int, ...]  # each row's steps, non-increasing
    active: tuple[int, ...]  # m_t
    starts: tuple[int, ...]

    @classmethod
    def of(cls, lengths: Sequence[int]) -> "StepLayout":
        lengths = tuple(int(n) for n in lengths)
        active = active_rows(list(lengths), len(lengths), max(lengths, default=0))
        starts = [0, len(lengths)]
        for m in active:
            starts.append(starts[-1] + m)
        return cls(lengths, tuple(active), tuple(starts))

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def steps(self) -> int:
        return len(self.active)

    @property
    def input_rows(self) -> int:
        return self.starts[-2]

    @property
    def output_rows(self) -> int:
        return self.starts[-1] - self.rows

    def input_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, step) of each input row (padding rows included)."""
        sizes = np.asarray((self.rows,) + self.active[:-1], dtype=np.int64)
        return _within_blocks(sizes), np.repeat(np.arange(self.steps), sizes)

    def output_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, step) of each output row."""
        sizes = np.asarray(self.active, dtype=np.int64)
        return _within_blocks(sizes), np.repeat(np.arange(self.steps), sizes)

    def previous_states(self) -> np.ndarray:
        """For each output row, the state row it started its step from."""
        rows, steps = self.output_positions()
        return np.asarray(self.starts, dtype=np.int64)[steps] + rows

    def final_states(self) -> np.ndarray:
        """For each row, the state row after its own last step."""
        return np.asarray(self.starts, dtype=np.int64)[np.asarray(self.lengths)] + np.arange(self.rows)


def _within_blocks(sizes: np.ndarray) -> np.ndarray:
    """0 .. size - 1 for each block, concatenated."""
    offsets = np.cumsum(sizes) - sizes
    return np.arange(int(sizes.sum())) - np.repeat(offsets, sizes)


def unrolled_decoder(shape: UnrolledShape, layout: StepLayout, shares: Tensor, h0: Tensor, c0: Tensor | None,
                     feed0: Tensor | None, keys: Tensor, values: Tensor, mask: Tensor, w_query: Tensor | None,
                     energy: Tensor | None, w_feed: Tensor | None, w_hidden: Tensor, b_hidden: Tensor,
                     w_combine: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Run each row's teacher-forced steps, rows sorted longest first (``layout``). shares:
    [layout.input_rows, G], every step's embedding share of the gates (with b_ih) in the
    layout's input rows; h0, c0: [N, H]; feed0 [N, H], the fed-back vector before step 0 (input
    feeding, else None); keys [N, S, A]; values [N, S, X]; mask [N, S] (True at real tokens);
    w_query [A, H] and energy [A] (Bahdanau); w_feed [G, H] (input feeding, else None);
    w_hidden [G, H], b_hidden [G]; w_combine [H, H].
    Returns features [layout.output_rows, H] (the layout's output rows), attention weights
    [N, T, S] (zero past a row's length), and the state after each row's last step: h [N, H]
    and c (LSTM)."""
    inputs = (shares, h0, c0, feed0, keys, values, mask, w_query, energy, w_feed, w_hidden, b_hidden, w_combine)
    if shares.size(0) != layout.input_rows or h0.size(0) != layout.rows:
        raise ValueError(f"unrolled_decoder: shares must have {layout.input_rows} rows and h0 {layout.rows}")
    # the forward keeps what only the backward needs only when there will be one
    for_backward = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    features, weights, h_last, c_last = _Unrolled.apply(shape, for_backward, layout, *inputs)
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
    """Buffers follow the :class:`StepLayout`: ``xh`` holds the states, each row
    ``[feed; h]`` (F = H with input feeding, else 0), so that an LSTM step's feed and hidden
    shares are one product with ``[W_feed, W_hidden]`` and the weights' gradients are one
    product with the input rows. For the backward, the forward also keeps each step's local
    derivatives in output rows, computed for all steps at once after the loop: the LSTM's
    ``d c_t / d gates`` (and ``d h_t / d o``), ``d h_t / d c_t`` (o tanh'(c_t)), and the
    features' tanh slope."""

    @staticmethod
    def forward(ctx, shape: UnrolledShape, for_backward: bool, layout: StepLayout,  # type: ignore[override]
                shares: Tensor, h0: Tensor, c0: Tensor | None, feed0: Tensor | None, keys: Tensor, values: Tensor,
                mask: Tensor, w_query: Tensor | None, energy: Tensor | None, w_feed: Tensor | None,
                w_hidden: Tensor, b_hidden: Tensor, w_combine: Tensor):
        n, gate_size = h0.size(0), shares.size(1)
        hidden, source = h0.size(1), keys.size(1)
        steps, active, starts = layout.steps, layout.active, layout.starts
        lstm, bahdanau = shape.cell == "lstm", shape.attention == "bahdanau"
        g = shape.context_gate_size
        feed_size = 0 if w_feed is None else w_feed.size(1)
        new = shares.new_empty
        outputs = layout.output_rows
        partial = active[-1] < n  # some rows end early: the input rows hold padding
        xh = new(starts[-1], feed_size + hidden)  # the states, [feed; h]
        hs = xh[:, feed_size:]
        hs[:n] = h0
        # feats: each state's features (with input feeding they are the next step's feed)
        feats = xh[:, :feed_size] if feed_size else new(starts[-1], hidden)
        feats[:n] = 0 if feed0 is None else feed0
        weights = (shares.new_zeros if partial else new)(n, steps, source)
        acts = new(outputs, gate_size)  # LSTM: i, f, g, o after their nonlinearity; GRU: r, z, n
        cs = new(starts[-1], hidden) if lstm else None  # LSTM cell states, in state rows
        tanh_c = new(outputs, hidden) if lstm else None
        hidden_n = None if lstm else new(outputs, hidden)  # GRU: W_hn h + b_hn, multiplied by r
        if cs is not None:
            assert c0 is not None
            cs[:n] = c0
        blocked = ~mask
        sigmoids = doubled_keys = doubled_query = energy2 = None
        if bahdanau:
            assert w_query is not None and energy is not None
            # v^T tanh(q + k) = (2v)^T sigmoid(2q + 2k) - sum(v) (tanh z = 2 sigmoid(2z) - 1)
            sigmoids = new(outputs, source, keys.size(2))
            doubled_keys, doubled_query, energy2 = keys, w_query.t() * 2, energy * 2
        # An LSTM step's four gates go through one sigmoid: the candidate's tanh as 2 sigmoid(2x) - 1,
        # from its doubled input products (weights, b, and with Bahdanau the context's share of it).
        w_hidden_t, w_combine_t = w_hidden.t(), w_combine.t()
        w_feed_t = None if w_feed is None else w_feed.t()
        candidate = slice(2 * hidden, 3 * hidden)  # the LSTM's tanh gate
        # the values the forward mixes (the backward reads the model's)
        column_scale = values.new_ones(values.size(2))
        if lstm and g:
            column_scale[candidate] = 2
        if lstm:
            shares = shares + b_hidden  # b_hh joins b_ih once, not every step
            shares[:, candidate] *= 2
            w_xh = torch.cat([w_feed, w_hidden], dim=1) if w_feed is not None else w_hidden.clone()
            w_xh[candidate] *= 2
            w_xh_t = w_xh.t()
        mixing = values * column_scale
        for t in range(steps):
            m, before, after = active[t], starts[t], starts[t + 1]
            out = after - n  # this step's output rows start here
            h = hs[before:before + m]
            gates = torch.addmm(shares[before:before + m], xh[before:before + m], w_xh_t) if lstm \
                else shares[before:before + m].clone()
            if bahdanau:
                z = torch.add(doubled_keys[:m], (h @ doubled_query).unsqueeze(1), out=sigmoids[out:out + m]).sigmoid_()
                scores = torch.matmul(z, energy2)
                a = torch.softmax(scores.masked_fill_(blocked[:m], float("-inf")), dim=-1)
                weights[:m, t] = a
                mixed = torch.bmm(a.unsqueeze(1), mixing[:m]).squeeze(1)
                gates += mixed[:, :g]
                context_share = mixed[:, g:]
            if lstm:
                act = acts[out:out + m]
                torch.sigmoid(gates, out=act)
                act[:, candidate].mul_(2).sub_(1)  # sigmoid(2 g) -> tanh(g)
                i, f, cell, o = act.chunk(4, dim=1)
                c = torch.addcmul(f * cs[before:before + m], i, cell, out=cs[after:after + m])
                torch.mul(o, torch.tanh(c, out=tanh_c[out:out + m]), out=hs[after:after + m])
            else:
                if w_feed_t is not None:
                    gates.addmm_(feats[before:before + m], w_feed_t)
                hg = torch.addmm(b_hidden, h, w_hidden_t)
                act = acts[out:out + m]
                torch.sigmoid(gates[:, :2 * hidden] + hg[:, :2 * hidden], out=act[:, :2 * hidden])
                r, z_gate = act[:, :hidden], act[:, hidden:2 * hidden]
                hidden_n[out:out + m] = hg[:, 2 * hidden:]
                cand = torch.tanh(torch.addcmul(gates[:, 2 * hidden:], r, hidden_n[out:out + m]),
                                  out=act[:, 2 * hidden:])
                torch.addcmul(cand, z_gate, h - cand, out=hs[after:after + m])
            if not bahdanau:  # Luong: the new state queries the memory
                scores = torch.bmm(hs[after:after + m].unsqueeze(1), keys[:m].transpose(1, 2)).squeeze(1)
                a = torch.softmax(scores.masked_fill_(blocked[:m], float("-inf")), dim=-1)
                weights[:m, t] = a
                context_share = torch.bmm(a.unsqueeze(1), mixing[:m]).squeeze(1)
            torch.tanh(torch.addmm(context_share, hs[after:after + m], w_combine_t), out=feats[after:after + m])
        ctx.shape, ctx.feed_size, ctx.layout, ctx.partial = shape, feed_size, layout, partial
        ctx.has_c0, ctx.has_feed0 = c0 is not None, feed0 is not None
        ctx.mark_non_differentiable(weights)
        features = feats[n:].contiguous()
        final = torch.from_numpy(layout.final_states()).to(h0.device)
        h_last = hs.index_select(0, final)
        c_last = cs.index_select(0, final) if cs is not None else h0.new_empty(0)
        if not for_backward:
            return features, weights, h_last, c_last
        feature_slope = 1 - features * features  # tanh' of the features
        carry = gate_slope = None
        if lstm:
            i, f, cell, o = acts.chunk(4, dim=1)
            c_before = cs.index_select(0, torch.from_numpy(layout.previous_states()).to(h0.device))
            gate_slope = torch.empty_like(acts)  # d gates: i, f, g by d c; o by d h
            torch.mul(cell * i, 1 - i, out=gate_slope[:, :hidden])
            torch.mul(c_before * f, 1 - f, out=gate_slope[:, hidden:2 * hidden])
            torch.mul(i, 1 - cell * cell, out=gate_slope[:, 2 * hidden:3 * hidden])
            torch.mul(tanh_c * o, 1 - o, out=gate_slope[:, 3 * hidden:])
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
        layout: StepLayout = ctx.layout
        active, starts, steps, n = layout.active, layout.starts, layout.steps, layout.rows
        lstm, bahdanau = shape.cell == "lstm", shape.attention == "bahdanau"
        g, feed_size = shape.context_gate_size, ctx.feed_size
        gate_size, outputs, inputs = acts.size(1), layout.output_rows, layout.input_rows
        hidden = xh.size(1) - feed_size
        hs = xh[:, feed_size:]  # each state's h (its feed, with input feeding, is xh[:, :feed_size])
        # input rows past a step's m_t are padding: zero for the products over all steps
        fill = xh.new_zeros if ctx.partial else xh.new_empty
        d_input = fill(inputs, gate_size)  # d(gates), input side: the shares', the feed's and the context's
        d_hidden_side = d_input if lstm else fill(inputs, gate_size)  # d(W_hh h + b_hh)
        d_pre = xh.new_empty(outputs, hidden)  # d(W_c h + context share), before tanh
        d_mixed = fill(n, steps, values.size(2))  # d(weights @ values) per step
        # d(attention scores) per step: output rows with Bahdanau (against the sigmoids), by row with Luong
        d_scores = xh.new_empty(outputs, keys.size(1)) if bahdanau else fill(n, steps, keys.size(1))
        d_query = fill(inputs, w_query.size(0)) if bahdanau else None  # d(W_q h)
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
            d_features = xh.new_zeros(outputs, hidden)
        sloped_features = d_features * feature_slope
        w_xh = torch.cat([w_feed, w_hidden], dim=1) if lstm_feed else w_hidden
        # (d(weights) = values @ d(mixed) is computed as d(mixed)^T values^T: the same product,
        # about 10x faster on CPU than bmm with a one-column right side)
        for t in reversed(range(steps)):
            m, before = active[t], starts[t]
            out = starts[t + 1] - n
            dh = d_h[:m]
            pre = torch.addcmul(sloped_features[out:out + m], d_feed[:m], feature_slope[out:out + m],
                                out=d_pre[out:out + m])
            dh.addmm_(pre, w_combine)
            if bahdanau:
                d_mixed[:m, t, g:] = pre
            else:
                d_mixed[:m, t] = pre
                a = weights[:m, t]
                da = torch.bmm(pre.unsqueeze(1), values[:m].transpose(1, 2)).squeeze(1)
                ds = torch.mul(a, da - (a * da).sum(-1, keepdim=True), out=d_scores[:m, t])  # softmax backward
                dh.add_(torch.bmm(ds.unsqueeze(1), keys[:m]).squeeze(1))
            d_gates = d_input[before:before + m]
            if lstm:
                dc = d_c[:m]
                dc.addcmul_(dh, carry[out:out + m])
                torch.mul(gate_slope[out:out + m, :3 * hidden].view(m, 3, hidden), dc.unsqueeze(1),
                          out=d_gates[:, :3 * hidden].view(m, 3, hidden))
                torch.mul(gate_slope[out:out + m, 3 * hidden:], dh, out=d_gates[:, 3 * hidden:])
                dc.mul_(acts[out:out + m, hidden:2 * hidden])
                torch.mm(d_gates, w_xh, out=d_state[:m])  # d(h) and d(feed) before step t
            else:
                r, z, cand = acts[out:out + m].chunk(3, dim=1)
                dr, dz, dn = d_gates.chunk(3, dim=1)
                d_cand = torch.mul(dh * (1 - z), 1 - cand * cand, out=dn)
                torch.mul(dh * (hs[before:before + m] - cand), z * (1 - z), out=dz)
                torch.mul(d_cand * hidden_n[out:out + m], r * (1 - r), out=dr)
                d_side = d_hidden_side[before:before + m]
                d_side[:, :2 * hidden] = d_gates[:, :2 * hidden]
                torch.mul(d_cand, r, out=d_side[:, 2 * hidden:])
                dh.copy_(torch.addmm(dh * z, d_side, w_hidden))
                if w_feed is not None:
                    torch.mm(d_gates, w_feed, out=d_feed[:m])
            if bahdanau:
                d_mixed[:m, t, :g] = d_gates
                a = weights[:m, t]
                da = torch.bmm(d_mixed[:m, t].unsqueeze(1), values[:m].transpose(1, 2)).squeeze(1)
                ds = torch.mul(a, da - (a * da).sum(-1, keepdim=True), out=d_scores[out:out + m]).unsqueeze(1)
                z = sigmoids[out:out + m]
                slope = torch.addcmul(z, z, z, value=-1)  # sigmoid' = z (1 - z)
                # u = 2 W_q h + k (k = 2 U s), scores = (2v)^T sigmoid(u) - sum(v):
                # d(W_q h) = 4 v * sum_s ds z'(u), d(k) = 2 v * ds z'(u)
                torch.mul(torch.bmm(ds, slope).squeeze(1), energy * 4, out=d_query[before:before + m])
                d_keys_acc[:m].addcmul_(slope, ds.transpose(1, 2))
                dh.addmm_(d_query[before:before + m], w_query)
        d_b_hidden = d_hidden_side.sum(0)
        states_in, states_out = xh[:inputs], xh[n:]  # each step's state before it (input rows) and after
        if lstm:
            d_w_xh = d_input.t() @ states_in
            d_w_feed = d_w_xh[:, :feed_size] if w_feed is not None else None
            d_w_hidden = d_w_xh[:, feed_size:]
        else:
            d_w_hidden = d_hidden_side.t() @ states_in[:, feed_size:]
            d_w_feed = None if w_feed is None else d_input.t() @ states_in[:, :feed_size]
        d_w_combine = d_pre.t() @ states_out[:, feed_size:]
        d_values = torch.bmm(weights.transpose(1, 2), d_mixed)
        d_energy = None
        if bahdanau:
            d_keys = d_keys_acc.mul_(energy * 2)
            d_w_query = d_query.t() @ states_in[:, feed_size:]
            # d(scores)/d(v) = 2 sigmoid(u) (the - sum(v) term's gradient, -sum(ds), is 0: ds sums to 0 per row)
            d_energy = (d_scores.view(1, -1) @ sigmoids.view(-1, sigmoids.size(-1))).squeeze(0) * 2
        else:  # d(keys) = sum_t d(scores)_t^T h_t by row: the states after each step, put by row
            rows, step = (torch.from_numpy(x).to(xh.device) for x in layout.output_positions())
            h_by_row = xh.new_zeros(n, steps, hidden).index_put_((rows, step), states_out[:, feed_size:])
            d_keys = torch.bmm(d_scores.transpose(1, 2), h_by_row)
            d_w_query = None
        d_c0 = d_c if ctx.has_c0 else None
        d_feed0 = d_feed.clone() if ctx.has_feed0 else None
        return (None, None, None, d_input, d_h.clone(), d_c0, d_feed0, d_keys, d_values, None, d_w_query,
                d_energy, d_w_feed, d_w_hidden, d_b_hidden, d_w_combine)


class UnrolledSteps:
    """Runs a one-layer step-by-step decoder's teacher-forced steps with :func:`unrolled_decoder`,
    from the decoder's :class:`~seq2seq.model.decoder.StepWeights` and a memory with the
    projected shares (:class:`~seq2seq.fast.variants.ProjectedMemory`)."""

    def applies(self, decoder: Decoder, prev_tokens: Tensor, memory: Memory) -> bool:
        """T > 1 steps (teacher forcing), one layer, attention, one memory entry per row, projected
        values, no autocast."""
        recurrence = decoder.recurrence
        return (recurrence is not None and prev_tokens.size(1) > 1 and recurrence.upper is None
                and decoder.attention is not None and memory.mask.size(0) == prev_tokens.size(0)
                and isinstance(memory, ProjectedMemory)
                and not torch.is_autocast_enabled(prev_tokens.device.type))

    def __call__(self, decoder: Decoder, prev_tokens: Tensor, state: DecoderState, memory: Memory,
                 lengths: list[int] | None) -> tuple[Tensor, Tensor, DecoderState, Tensor]:
        """All steps, each row up to its length: features [R, H] and their flat positions in
        [B, T], the state after each row's last step, and the attention weights [B, T, S]
        (zero past a row's length)."""
        recurrence, weights_of = decoder.recurrence, decoder.step_weights()
        assert isinstance(memory, ProjectedMemory)
        values, gate_values = memory.values, memory.gate_values
        assert recurrence is not None and memory.keys is not None and values is not None
        batch, steps = prev_tokens.shape
        device = prev_tokens.device
        if lengths is None:
            lengths = [steps] * batch
        if len(lengths) != batch or not all(0 < n <= steps for n in lengths):
            raise ValueError(f"decoder: lengths must be {batch} counts in 1..{steps}")
        bahdanau = decoder.kind == "bahdanau"
        h, c = (state.rnn[0][0], state.rnn[1][0]) if isinstance(state.rnn, tuple) else (state.rnn[0], None)
        keys, mask, feed = memory.keys, memory.mask, state.feed
        context_gate_size = 0
        if bahdanau:
            assert gate_values is not None
            keys = keys * 2  # the sigmoid form of tanh below wants 2 U s_j
            values = torch.cat([gate_values, values], dim=-1)  # one mix per step for both shares
            context_gate_size = gate_values.size(-1)
        order = None
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            # the unrolled steps skip a suffix of rows: run the rows longest first, then put them back
            order = sorted(range(batch), key=lambda row: -lengths[row])
            index = torch.tensor(order, device=device)
            h, keys, values, mask = (x.index_select(0, index) for x in (h, keys, values, mask))
            c = None if c is None else c.index_select(0, index)
            feed = None if feed is None else feed.index_select(0, index)
            lengths = [lengths[row] for row in order]
        layout = StepLayout.of(lengths)
        rows = np.asarray(order) if order is not None else np.arange(batch)

        def flat(row_step: tuple[np.ndarray, np.ndarray]) -> Tensor:  # layout rows -> positions in [B, T]
            return torch.from_numpy(rows[row_step[0]] * steps + row_step[1]).to(device)

        tokens = prev_tokens.reshape(-1).index_select(0, flat(layout.input_positions()))
        input_shares = recurrence.input_gates(decoder.dropout(decoder.embed(tokens)))  # every step's at once
        shape = UnrolledShape("lstm" if recurrence.is_lstm else "gru", decoder.kind, context_gate_size)
        w = weights_of
        features, weights, h_last, c_last = unrolled_decoder(
            shape, layout, input_shares, h, c, feed, keys, values, mask, w.w_query, w.energy, w.w_feed,
            w.w_hidden, w.b_hidden, w.w_combine)
        last = features.index_select(0, torch.from_numpy(layout.final_states() - batch).to(device))
        if order is not None:
            back = torch.tensor(order, device=device).argsort()
            weights, h_last, last = (x.index_select(0, back) for x in (weights, h_last, last))
            c_last = None if c_last is None else c_last.index_select(0, back)
        if weights.size(1) < steps:  # no row runs the last steps
            weights = torch.nn.functional.pad(weights, (0, 0, 0, steps - weights.size(1)))
        rnn: State = (h_last.unsqueeze(0), c_last.unsqueeze(0)) if c_last is not None else h_last.unsqueeze(0)
        final = DecoderState(rnn, last if decoder.input_feeding else None)
        return decoder.dropout(features), flat(layout.output_positions()), final, weights
