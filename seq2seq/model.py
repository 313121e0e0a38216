"""The recurrent encoder-decoder: embed -> encode -> (h, c) -> decode -> softmax -> token.

"Encoder packs, decoder unpacks." The encoder reads the source (packed, so padding
never enters the recurrence) and ends in a final state; the bridge turns that state
into the decoder's initial state (the seed's context vector). The decoder then
predicts one target token per step. With ``attention="none"`` that initial state is
all the decoder knows of the source (the seed's model). With ``luong`` (Luong et al.
2015) or ``bahdanau`` (Bahdanau et al. 2015) attention each decoder step also looks
back at every encoder state and builds a per-step context.

Shapes use B = batch, S = source length, T = target length, H = hidden size,
E = embedding size, V = vocabulary size, L = layers, D = encoder output size
(``model.encoder_hidden_size``, H unless set; a bidirectional encoder gives D/2 to each direction).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .activations import tanh
from .config import ModelConfig
from .dropout import Dropout
from .recurrence import State, StepRecurrence, gate_count, recurrent_layers
from .subwords import PAD_ID
from .unrolled import StepLayout, UnrolledShape, unrolled_decoder


@dataclass
class DecoderState:
    """The decoder's recurrent state, plus the last attentional vector [B, H] when
    input feeding is on (fed into the next step's input), else None."""

    rnn: State
    feed: Tensor | None = None

    def select(self, index: Tensor) -> "DecoderState":
        """Pick batch rows ``index`` (used to reorder beams)."""
        if isinstance(self.rnn, tuple):
            rnn: State = (self.rnn[0].index_select(1, index), self.rnn[1].index_select(1, index))
        else:
            rnn = self.rnn.index_select(1, index)
        return DecoderState(rnn, None if self.feed is None else self.feed.index_select(0, index))

    def top_hidden(self) -> Tensor:
        """h of the top layer: [B, 1, H] (the Bahdanau query)."""
        h = self.rnn[0] if isinstance(self.rnn, tuple) else self.rnn
        return h[-1].unsqueeze(1)


@dataclass
class Memory:
    """What the decoder may look at, computed once per batch: N entries (one per source sentence).

    keys: [N, S, A], what attention scores (None without attention); values: [N, S, X],
    what its weights mix: each encoder state's share of the decoder's output features and,
    with Bahdanau attention, of its gates (None without attention); mask: [N, S], True at
    real tokens. The decoder may run K = rows / N rows per entry, one after the other (beam
    search's K beams of a sentence read its one entry instead of K copies of it).
    """

    keys: Tensor | None
    values: Tensor | None
    mask: Tensor

    def select(self, index: Tensor) -> "Memory":
        """Pick entries ``index`` (with K rows per entry, the rows of those entries)."""
        keys = None if self.keys is None else self.keys.index_select(0, index)
        values = None if self.values is None else self.values.index_select(0, index)
        return Memory(keys, values, self.mask.index_select(0, index))

    def by_entry(self, x: Tensor) -> Tensor:
        """[N * K, T, Y] (decoder rows) -> [N, K * T, Y] (the rows of each entry together)."""
        return x.reshape(self.mask.size(0), -1, x.size(-1))

    def mix(self, weights: Tensor) -> Tensor:
        """Attention weights [N * K, T, S] -> the weighted sums of the values, [N * K, T, X]."""
        assert self.values is not None
        mixed = torch.bmm(self.by_entry(weights), self.values)
        return mixed.view(weights.size(0), weights.size(1), -1)


class Encoder(nn.Module):
    """Embedding -> LSTM/GRU (optionally bidirectional); padding never enters the recurrence."""

    # A batch of a few distinct source lengths runs as one unpadded call per length (the fused
    # kernel; about 20% faster on CPU than a packed call); more lengths than this run packed.
    MAX_LENGTH_GROUPS = 4

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = Dropout(config.dropout)
        # A bidirectional encoder splits D between its two directions (D/2 each), so its
        # outputs have size D either way.
        directions = 2 if config.bidirectional else 1
        self.rnn = recurrent_layers(config.cell, config.embedding_size, config.encoder_size // directions,
                                    config.layers, config.dropout, config.bidirectional)
        self.output_size = config.encoder_size

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        """src: [B, S] ids; lengths: [B] (on CPU). Returns outputs [B, S, D] (zeros at padding)
        and the final state, h (and c) each [L * directions, B, D / directions]."""
        embedded = self.dropout(self.embed(src))
        lengths = lengths.cpu()
        if bool((lengths == src.size(1)).all()):
            # No padding at all (the usual case with length-bucketed batches): the plain
            # call gives the same result as a packed one and runs the fused kernel.
            return self.rnn(embedded)
        distinct = lengths.unique()
        if len(distinct) <= self.MAX_LENGTH_GROUPS:
            return self._by_length(embedded, lengths, distinct.tolist())
        return self._packed(embedded, lengths)

    def _by_length(self, embedded: Tensor, lengths: Tensor, distinct: list[int]) -> tuple[Tensor, State]:
        """The same outputs and final state as a packed call, from one call per source length."""
        outputs: Tensor | None = None
        finals, rows = [], []
        for length in distinct:
            index = (lengths == length).nonzero().squeeze(1).to(embedded.device)
            out, final = self.rnn(embedded[index, :length])
            if outputs is None:  # the RNN's dtype: under bf16 autocast an LSTM returns bf16, a GRU fp32
                outputs = out.new_zeros(embedded.size(0), embedded.size(1), self.output_size)
            positions = torch.arange(length, device=embedded.device)
            outputs = outputs.index_put((index.unsqueeze(1), positions.unsqueeze(0)), out)
            finals.append(final)
            rows.append(index)
        assert outputs is not None  # distinct holds at least one length
        back = torch.cat(rows).argsort()  # concatenated group order -> batch order
        if isinstance(finals[0], tuple):
            h = torch.cat([f[0] for f in finals], dim=1).index_select(1, back)
            c = torch.cat([f[1] for f in finals], dim=1).index_select(1, back)
            return outputs, (h, c)
        return outputs, torch.cat(finals, dim=1).index_select(1, back)  # type: ignore[arg-type]

    def _packed(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=embedded.size(1))
        return outputs, final


class Bridge(nn.Module):
    """Turns the encoder's final state into the decoder's initial state (h0_dec = f(h_T)).

    A unidirectional encoder of the decoder's size passes its state through unchanged,
    as in the seed; otherwise the directions (D/2 each) are concatenated and projected
    to H: h0 = tanh(W [h_fwd; h_bwd] + b).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.layers = config.layers
        self.directions = 2 if config.bidirectional else 1
        self.is_lstm = config.cell == "lstm"
        self.identity = not config.bidirectional and config.encoder_size == config.hidden_size
        if not self.identity:
            self.h_proj = nn.Linear(config.encoder_size, config.hidden_size)
            self.c_proj = nn.Linear(config.encoder_size, config.hidden_size) if self.is_lstm else None

    def _merge(self, x: Tensor, proj: nn.Linear) -> Tensor:
        """x: [L * directions, B, D / directions] -> [L, B, H]."""
        _, batch, part = x.shape
        both = x.view(self.layers, self.directions, batch, part).transpose(1, 2)
        return torch.tanh(proj(both.reshape(self.layers, batch, self.directions * part)))

    def forward(self, final: State) -> State:
        if self.identity:
            return final
        if self.is_lstm:
            h, c = final  # type: ignore[misc]
            assert self.c_proj is not None
            return (self._merge(h, self.h_proj), self._merge(c, self.c_proj))
        return self._merge(final, self.h_proj)  # type: ignore[arg-type]


def _weights(scores: Tensor, memory: Memory, rows: Tensor) -> Tensor:
    """scores: [N, K * T, S] -> attention weights [N * K, T, S] in the shape of the queries
    ``rows`` [N * K, T, *]; padding gets weight 0."""
    weights = torch.softmax(scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf")), dim=-1)
    return weights.view(rows.size(0), rows.size(1), -1)


class LuongAttention(nn.Module):
    """Multiplicative attention (Luong et al. 2015), queried with the current decoder output h_t.

    ``general``: score(h_t, s_j) = h_t^T W s_j; ``dot``: h_t^T s_j. Keys (W s_j) are
    computed once per batch.
    """

    def __init__(self, query_size: int, memory_size: int, score: str = "general") -> None:
        super().__init__()
        if score == "dot" and query_size != memory_size:
            raise ValueError("dot attention needs equal query and memory sizes")
        self.key_proj = nn.Linear(memory_size, query_size, bias=False) if score == "general" else None

    def keys(self, states: Tensor) -> Tensor:
        """states: [B, S, D] -> keys [B, S, H]."""
        return states if self.key_proj is None else self.key_proj(states)

    def forward(self, queries: Tensor, memory: Memory) -> Tensor:
        """queries: [N * K, T, H] -> weights [N * K, T, S]."""
        assert memory.keys is not None
        return _weights(torch.bmm(memory.by_entry(queries), memory.keys.transpose(1, 2)), memory, queries)


class BahdanauAttention(nn.Module):
    """Additive attention (Bahdanau et al. 2015), queried with the previous decoder state:
    score(q, s_j) = v^T tanh(W q + U s_j); keys are computed once per batch, as 2 U s_j
    (see ``forward`` for the factor 2)."""

    def __init__(self, query_size: int, memory_size: int, hidden: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(memory_size, hidden, bias=False)
        self.query_proj = nn.Linear(query_size, hidden, bias=False)
        self.energy = nn.Linear(hidden, 1, bias=False)

    def keys(self, states: Tensor) -> Tensor:
        return self.key_proj(states) * 2

    def forward(self, queries: Tensor, memory: Memory) -> Tensor:
        """queries: [N * K, T, H] -> weights [N * K, T, S]."""
        assert memory.keys is not None
        projected = memory.by_entry(self.query_proj(queries) * 2)  # [N, K * T, A]
        # v^T tanh(z) computed as (2v)^T sigmoid(2z) - sum(v): the same value, and sigmoid is
        # about 3x faster than tanh on CPU over this [N, K * T, S, A] tensor, the largest of a step.
        # 2z = 2 W q + 2 U s_j: the keys are kept doubled, so the large tensor is not scaled.
        gates = torch.sigmoid(projected.unsqueeze(2) + memory.keys.unsqueeze(1))
        v = self.energy.weight.squeeze(0)
        return _weights(torch.matmul(gates, v * 2) - v.sum(), memory, queries)


class Decoder(nn.Module):
    """Embedding -> LSTM/GRU (from the bridged state) -> [attention] -> output features [B, T, H].

    * ``none``: features are the RNN outputs (the seed's model: the bridged state is
      all the decoder knows of the source).
    * ``luong``: the RNN output h_t queries the encoder states; features =
      tanh(W [h_t; context]).
    * ``bahdanau``: the previous state queries the encoder states before the step, the
      context joins the step's input; features = tanh(W [h_t; context]).
    * ``input_feeding``: the previous step's features join the next step's input.

    W [h_t; context] is computed as W_h h_t + sum_j a_j (W_c s_j), with W_c s_j (and,
    for Bahdanau, the context's share of the RNN gates) projected once per batch into
    ``Memory.values``: a step mixes them with its attention weights instead of
    projecting a context vector.

    With ``none`` or ``luong`` and no input feeding, every step's input is only the
    previous target token, so under teacher forcing the whole target goes through the
    RNN in one call (the fast path). Otherwise the steps run one by one
    (:class:`~seq2seq.recurrence.StepRecurrence`). Either way ``forward`` with T = 1 is
    one step of search.
    """

    def __init__(self, config: ModelConfig, vocab_size: int, memory_size: int) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.kind = config.attention
        self.input_feeding = config.input_feeding
        self.hidden_size = hidden
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = Dropout(config.dropout)
        stepwise = self.kind == "bahdanau" or self.input_feeding  # else the whole target in one RNN call
        # The context's share of the gates (Bahdanau): the first columns of Memory.values.
        self.context_gate_size = gate_count(config.cell) * hidden if self.kind == "bahdanau" else 0
        self.rnn: nn.RNNBase | None = None
        self.recurrence: StepRecurrence | None = None
        if stepwise:
            self.recurrence = StepRecurrence(
                config.cell, config.embedding_size, memory_size if self.kind == "bahdanau" else 0,
                hidden if self.input_feeding else 0, hidden, config.layers, config.dropout)
        else:
            self.rnn = recurrent_layers(config.cell, config.embedding_size, hidden, config.layers, config.dropout,
                                        bidirectional=False)
        self.attention: LuongAttention | BahdanauAttention | None = None
        self.combine_hidden = self.combine_context = None
        if self.kind != "none":
            self.attention = (LuongAttention(hidden, memory_size, config.luong_score) if self.kind == "luong"
                              else BahdanauAttention(hidden, memory_size, hidden))
            # W = [W_h, W_c] of tanh(W [h_t; context]), initialised as one nn.Linear would be.
            self.combine_hidden = nn.Linear(hidden, hidden, bias=False)
            self.combine_context = nn.Linear(memory_size, hidden, bias=False)
            bound = (hidden + memory_size) ** -0.5
            nn.init.uniform_(self.combine_hidden.weight, -bound, bound)
            nn.init.uniform_(self.combine_context.weight, -bound, bound)
        self._memory_size = memory_size
        self._embedding_size = config.embedding_size

    def memory(self, states: Tensor, mask: Tensor) -> Memory:
        """Encoder states [B, S, D] -> the memory the decoder reads (keys and values projected once)."""
        if self.attention is None:
            return Memory(None, None, mask)
        assert self.combine_context is not None
        values = self.combine_context(states)
        if self.context_gate_size:
            assert self.recurrence is not None and self.recurrence.context_gates is not None
            values = torch.cat([self.recurrence.context_gates(states), values], dim=-1)
        return Memory(self.attention.keys(states), values, mask)

    def initial_state(self, rnn_state: State, batch: int, like: Tensor) -> DecoderState:
        feed = like.new_zeros(batch, self.hidden_size) if self.input_feeding else None
        return DecoderState(rnn_state, feed)

    def _features(self, outputs: Tensor, context_share: Tensor | None) -> Tensor:
        """tanh(W_h h + W_c context) from the RNN outputs and the mixed W_c s_j (or the outputs)."""
        if self.combine_hidden is None:
            return outputs
        assert context_share is not None
        return tanh(self.combine_hidden(outputs) + context_share)

    def forward(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int] | None = None
                ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """prev_tokens: [B, T] (starting with <s>). Returns features [B, T, H], the new
        state and attention weights [B, T, S] (None without attention).

        ``lengths`` (teacher forcing): each row's real steps. Where the steps are unrolled, a row's
        steps past its length are skipped: its features and weights there are zero and the
        returned state is the one after its own last step. Elsewhere they are ignored."""
        if self.recurrence is not None and self._can_unroll(prev_tokens, memory):
            features, positions, final, weights = self._unrolled(prev_tokens, state, memory, lengths)
            batch, steps = prev_tokens.shape
            by_position = features.new_zeros(batch * steps, features.size(1)).index_copy(0, positions, features)
            return by_position.view(batch, steps, -1), final, weights
        embedded = self.dropout(self.embed(prev_tokens))
        if self.rnn is not None:
            outputs, rnn_state = self.rnn(embedded, state.rnn)
            weights = self.attention(outputs, memory) if self.attention is not None else None
            context_share = None if weights is None else memory.mix(weights)
            return self.dropout(self._features(outputs, context_share)), DecoderState(rnn_state), weights
        assert self.recurrence is not None
        input_shares = self.recurrence.input_gates(embedded)  # [B, T, G]: every step's at once
        features, all_weights = [], []
        for t in range(prev_tokens.size(1)):
            share, feed = input_shares[:, t], state.feed
            context_share = weights = None
            if self.kind == "bahdanau":
                assert self.attention is not None
                weights = self.attention(state.top_hidden(), memory)
                mixed = memory.mix(weights)[:, 0]
                share = share + mixed[:, :self.context_gate_size]
                context_share = mixed[:, self.context_gate_size:]
            output, rnn_state = self.recurrence.step(share, feed, state.rnn)
            if self.kind == "luong":
                assert self.attention is not None
                weights = self.attention(output.unsqueeze(1), memory)
                context_share = memory.mix(weights)[:, 0]
            feature = self._features(output, context_share)  # [B, H]
            state = DecoderState(rnn_state, feature if self.input_feeding else None)
            features.append(feature)
            all_weights.append(weights)
        stacked = None if all_weights[0] is None else torch.cat(all_weights, dim=1)  # type: ignore[arg-type]
        return self.dropout(torch.stack(features, dim=1)), state, stacked

    def _can_unroll(self, prev_tokens: Tensor, memory: Memory) -> bool:
        """Whether T > 1 steps (teacher forcing) can run as one function with a hand-written backward
        (:mod:`seq2seq.unrolled`): one layer, one memory entry per row, no autocast."""
        assert self.recurrence is not None
        return (prev_tokens.size(1) > 1 and self.recurrence.upper is None and self.attention is not None
                and memory.mask.size(0) == prev_tokens.size(0)
                and not torch.is_autocast_enabled(prev_tokens.device.type))

    def teacher_forced(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int]
                       ) -> tuple[Tensor, Tensor]:
        """Teacher forcing: the features of each row's real steps only, [R, H] (R = sum of
        ``lengths``), and where each is in [B, T] (flat indices, row * T + step), in whatever
        order the decoder computes them. Where the steps are unrolled, the padding past a row's
        length is never computed (see :class:`~seq2seq.unrolled.StepLayout`)."""
        if self.recurrence is not None and self._can_unroll(prev_tokens, memory):
            features, positions, _, _ = self._unrolled(prev_tokens, state, memory, lengths)
            return features, positions
        features, _, _ = self(prev_tokens, state, memory, lengths)
        steps = prev_tokens.size(1)
        real = np.concatenate([row * steps + np.arange(n) for row, n in enumerate(lengths)])
        positions = torch.from_numpy(real).to(features.device)
        return features.reshape(-1, features.size(-1)).index_select(0, positions), positions

    def _unrolled(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int] | None
                  ) -> tuple[Tensor, Tensor, DecoderState, Tensor]:
        """All steps as one function (:mod:`seq2seq.unrolled`), each row up to its length: features
        [R, H] and their flat positions in [B, T], the state after each row's last step, and the
        attention weights [B, T, S] (zero past a row's length)."""
        recurrence, attention = self.recurrence, self.attention
        assert recurrence is not None and attention is not None and self.combine_hidden is not None
        assert memory.keys is not None and memory.values is not None
        batch, steps = prev_tokens.shape
        device = prev_tokens.device
        if lengths is None:
            lengths = [steps] * batch
        if len(lengths) != batch or not all(0 < n <= steps for n in lengths):
            raise ValueError(f"decoder: lengths must be {batch} counts in 1..{steps}")
        bahdanau = isinstance(attention, BahdanauAttention)
        h, c = (state.rnn[0][0], state.rnn[1][0]) if isinstance(state.rnn, tuple) else (state.rnn[0], None)
        keys, values, mask, feed = memory.keys, memory.values, memory.mask, state.feed
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
        input_shares = recurrence.input_gates(self.dropout(self.embed(tokens)))  # every step's at once
        shape = UnrolledShape("lstm" if recurrence.is_lstm else "gru", self.kind, self.context_gate_size)
        features, weights, h_last, c_last = unrolled_decoder(
            shape, layout, input_shares, h, c, feed, keys, values, mask,
            attention.query_proj.weight if bahdanau else None,
            attention.energy.weight.squeeze(0) if bahdanau else None,
            None if recurrence.feed_gates is None else recurrence.feed_gates.weight,
            recurrence.hidden_gates.weight, recurrence.hidden_gates.bias, self.combine_hidden.weight)
        last = features.index_select(0, torch.from_numpy(layout.final_states() - batch).to(device))
        if order is not None:
            back = torch.tensor(order, device=device).argsort()
            weights, h_last, last = (x.index_select(0, back) for x in (weights, h_last, last))
            c_last = None if c_last is None else c_last.index_select(0, back)
        if weights.size(1) < steps:  # no row runs the last steps
            weights = nn.functional.pad(weights, (0, 0, 0, steps - weights.size(1)))
        rnn: State = (h_last.unsqueeze(0), c_last.unsqueeze(0)) if c_last is not None else h_last.unsqueeze(0)
        final = DecoderState(rnn, last if self.input_feeding else None)
        return self.dropout(features), flat(layout.output_positions()), final, weights


class Seq2Seq(nn.Module):
    """Encoder + bridge + decoder + generator (features -> vocabulary logits)."""

    def __init__(self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.encoder = Encoder(config, src_vocab_size)
        self.bridge = Bridge(config)
        self.decoder = Decoder(config, tgt_vocab_size, self.encoder.output_size)
        self.generator = nn.Linear(config.hidden_size, tgt_vocab_size)
        if config.tie_embeddings:
            self.generator.weight = self.decoder.embed.weight

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Memory, DecoderState]:
        """Encoder packs: returns the memory for attention and the decoder's initial state."""
        states, final = self.encoder(src, src_lengths)
        mask = src != PAD_ID
        initial = self.decoder.initial_state(self.bridge(final), src.size(0), states)
        return self.decoder.memory(states, mask), initial

    def forward(self, src: Tensor, src_lengths: Tensor, prev_tokens: Tensor, tgt_lengths: list[int] | None = None
                ) -> Tensor:
        """Teacher forcing: feed the gold previous tokens [B, T]; returns features [B, T, H].
        Project with ``self.generator`` (only where the loss needs it). ``tgt_lengths``: each
        row's real steps, so that the decoder can skip padding (see ``Decoder.forward``)."""
        memory, state = self.encode(src, src_lengths)
        features, _, _ = self.decoder(prev_tokens, state, memory, tgt_lengths)
        return features

    def teacher_forced(self, src: Tensor, src_lengths: Tensor, prev_tokens: Tensor, tgt_lengths: list[int]
                       ) -> tuple[Tensor, Tensor]:
        """Teacher forcing, real target positions only: features [R, H] and their flat positions
        in [B, T] (see ``Decoder.teacher_forced``), for the loss to pick the gold tokens."""
        memory, state = self.encode(src, src_lengths)
        return self.decoder.teacher_forced(prev_tokens, state, memory, tgt_lengths)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
