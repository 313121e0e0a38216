"""Decoder unpacks: from the bridged state, one target token per step, optionally looking back
at the encoder states through attention.

Training feeds truth (teacher forcing: all T gold previous tokens at once); inference feeds
itself (``forward`` with T = 1 is one step of search). Shapes: B batch, T target steps,
S source length, E embedding size, H hidden size, D encoder output size, L layers,
G gate rows (4H LSTM, 3H GRU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from ..core.token_ids import PAD_ID
from ..params.config import ModelConfig
from .attention import BahdanauAttention, LuongAttention, Memory
from .recurrence import State, StepRecurrence, recur, recurrent_layers


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


class TeacherForcedSteps(Protocol):
    """A faster way to run all teacher-forced steps of a step-by-step decoder at once, plugged in
    from outside the model (``seq2seq.fast``); it must compute what the step loop computes."""

    def applies(self, decoder: "Decoder", prev_tokens: Tensor, memory: Memory) -> bool:
        """Whether it can run these steps (else the decoder's own step loop runs)."""

    def __call__(self, decoder: "Decoder", prev_tokens: Tensor, state: DecoderState, memory: Memory,
                 lengths: list[int] | None) -> tuple[Tensor, Tensor, DecoderState, Tensor]:
        """Features of each row's real steps [R, H], their flat positions in [B, T], the state
        after each row's last step, and the attention weights [B, T, S]."""


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
    the :class:`Memory`: a step mixes them with its attention weights instead of
    projecting a context vector.

    With ``none`` or ``luong`` and no input feeding, every step's input is only the
    previous target token, so under teacher forcing the whole target goes through the
    RNN in one call. Otherwise the steps run one by one
    (:class:`~seq2seq.model.recurrence.StepRecurrence`), or all at once by a plugged-in
    :class:`TeacherForcedSteps` (``self.unrolled``, None in the plain model).
    """

    def __init__(self, config: ModelConfig, vocab_size: int, memory_size: int) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.kind = config.attention
        self.input_feeding = config.input_feeding
        self.hidden_size = hidden
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.dropout)
        stepwise = self.kind == "bahdanau" or self.input_feeding  # else the whole target in one RNN call
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
        self.unrolled: TeacherForcedSteps | None = None

    def memory(self, states: Tensor, mask: Tensor) -> Memory:
        """Encoder states [B, S, D] -> the memory the decoder reads (keys and values projected once)."""
        if self.attention is None:
            return Memory(None, None, mask)
        assert self.combine_context is not None
        gate_values = None
        if self.kind == "bahdanau":
            assert self.recurrence is not None and self.recurrence.context_gates is not None
            gate_values = self.recurrence.context_gates(states)
        return Memory(self.attention.keys(states), self.combine_context(states), mask, gate_values)

    def initial_state(self, rnn_state: State, batch: int, like: Tensor) -> DecoderState:
        feed = like.new_zeros(batch, self.hidden_size) if self.input_feeding else None
        return DecoderState(rnn_state, feed)

    def features(self, outputs: Tensor, context_share: Tensor | None) -> Tensor:
        """tanh(W_h h + W_c context) from the RNN outputs and the mixed W_c s_j (or the outputs)."""
        if self.combine_hidden is None:
            return outputs
        assert context_share is not None
        return torch.tanh(self.combine_hidden(outputs) + context_share)

    def forward(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int] | None = None
                ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """prev_tokens: [B, T] (starting with <s>). Returns features [B, T, H], the new
        state and attention weights [B, T, S] (None without attention).

        ``lengths`` (teacher forcing): each row's real steps. Where a plugged-in
        :class:`TeacherForcedSteps` runs them, a row's steps past its length are skipped: its
        features and weights there are zero and the returned state is the one after its own
        last step. Elsewhere they are ignored."""
        if self.unrolled is not None and self.unrolled.applies(self, prev_tokens, memory):
            features, positions, final, weights = self.unrolled(self, prev_tokens, state, memory, lengths)
            batch, steps = prev_tokens.shape
            by_position = features.new_zeros(batch * steps, features.size(1)).index_copy(0, positions, features)
            return by_position.view(batch, steps, -1), final, weights
        embedded = self.dropout(self.embed(prev_tokens))
        if self.rnn is not None:
            outputs, rnn_state = recur(self.rnn, embedded, state.rnn)
            weights = self.attention(outputs, memory) if self.attention is not None else None
            context_share = None if weights is None else memory.mix(weights)
            return self.dropout(self.features(outputs, context_share)), DecoderState(rnn_state), weights
        return self._step_by_step(embedded, state, memory)

    def _step_by_step(self, embedded: Tensor, state: DecoderState, memory: Memory
                      ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """The steps one after the other (Bahdanau attention or input feeding): embedded [B, T, E]."""
        assert self.recurrence is not None
        input_shares = self.recurrence.input_gates(embedded)  # [B, T, G]: every step's at once
        features, all_weights = [], []
        for t in range(embedded.size(1)):
            share, feed = input_shares[:, t], state.feed
            context_share = weights = None
            if self.kind == "bahdanau":
                assert self.attention is not None
                weights = self.attention(state.top_hidden(), memory)
                share = share + memory.mix(weights, memory.gate_values)[:, 0]
                context_share = memory.mix(weights)[:, 0]
            output, rnn_state = self.recurrence.step(share, feed, state.rnn)
            if self.kind == "luong":
                assert self.attention is not None
                weights = self.attention(output.unsqueeze(1), memory)
                context_share = memory.mix(weights)[:, 0]
            feature = self.features(output, context_share)  # [B, H]
            state = DecoderState(rnn_state, feature if self.input_feeding else None)
            features.append(feature)
            all_weights.append(weights)
        stacked = None if all_weights[0] is None else torch.cat(all_weights, dim=1)  # type: ignore[arg-type]
        return self.dropout(torch.stack(features, dim=1)), state, stacked

    def teacher_forced(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int]
                       ) -> tuple[Tensor, Tensor]:
        """Teacher forcing: the features of each row's real steps only, [R, H] (R = sum of
        ``lengths``), and where each is in [B, T] (flat indices, row * T + step), in whatever
        order the decoder computes them. A plugged-in :class:`TeacherForcedSteps` never
        computes the padding past a row's length."""
        if self.unrolled is not None and self.unrolled.applies(self, prev_tokens, memory):
            features, positions, _, _ = self.unrolled(self, prev_tokens, state, memory, lengths)
            return features, positions
        features, _, _ = self(prev_tokens, state, memory, lengths)
        steps = prev_tokens.size(1)
        real = np.concatenate([row * steps + np.arange(n) for row, n in enumerate(lengths)])
        positions = torch.from_numpy(real).to(features.device, non_blocking=True)  # no host sync on a GPU
        return features.reshape(-1, features.size(-1)).index_select(0, positions), positions
