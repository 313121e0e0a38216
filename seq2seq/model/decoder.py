"""Decoder unpacks: from the bridged state, one target token per step, optionally looking back
at the encoder states through attention.

Training feeds truth (teacher forcing: all T gold previous tokens at once); inference feeds
itself (``forward`` with T = 1 is one step of search). Shapes: B batch, T target steps,
S source length, E embedding size, H hidden size, D encoder output size, L layers,
G gate rows (4H LSTM, 3H GRU).
"""
from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class ContextTerms:
    """What a step's context vector c_t adds: W_c c_t to the features tanh(W_h h_t + W_c c_t)
    [B, T, H], and with Bahdanau attention its share of the recurrence's gates [B, T, G]
    (the context joins the step's input), else None."""

    features: Tensor
    gates: Tensor | None = None


@dataclass
class StepWeights:
    """The parameters of one decoder step, by role (for code that computes the same step another
    way, :mod:`seq2seq.fast`): the recurrence's layer 0 (``w_feed``: the fed-back vector's
    columns, or None), attention (``w_query``, ``energy``: Bahdanau's W and v, else None) and
    the features' W_h."""

    w_hidden: Tensor
    b_hidden: Tensor
    w_feed: Tensor | None
    w_query: Tensor | None
    energy: Tensor | None
    w_combine: Tensor


class Decoder(nn.Module):
    """Embedding -> LSTM/GRU (from the bridged state) -> [attention] -> output features [B, T, H].

    * ``none``: features are the RNN outputs (the seed's model: the bridged state is
      all the decoder knows of the source).
    * ``luong``: the RNN output h_t queries the encoder states; features =
      tanh(W [h_t; context]).
    * ``bahdanau``: the previous state queries the encoder states before the step, the
      context joins the step's input; features = tanh(W [h_t; context]).
    * ``input_feeding``: the previous step's features join the next step's input.

    tanh(W [h_t; c_t]) is computed as tanh(W_h h_t + W_c c_t) (W split by columns, the
    same product), where c_t = sum_j a_tj s_j is the context vector (:meth:`context_terms`).

    With ``none`` or ``luong`` and no input feeding, every step's input is only the
    previous target token, so under teacher forcing the whole target goes through the
    RNN in one call. Otherwise the steps run one by one
    (:class:`~seq2seq.model.recurrence.StepRecurrence`).

    The parts are built from the class attributes (``dropout_class``, ``recurrence_class``), so
    that a variant (:mod:`seq2seq.fast`) can build faster ones that declare the same parameters.
    """

    dropout_class: type[nn.Module] = nn.Dropout
    recurrence_class: type[StepRecurrence] = StepRecurrence

    def __init__(self, config: ModelConfig, vocab_size: int, memory_size: int) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.kind = config.attention
        self.input_feeding = config.input_feeding
        self.hidden_size = hidden
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = self.dropout_class(config.dropout)
        stepwise = self.kind == "bahdanau" or self.input_feeding  # else the whole target in one RNN call
        self.rnn: nn.RNNBase | None = None
        self.recurrence: StepRecurrence | None = None
        if stepwise:
            self.recurrence = self.recurrence_class(
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

    def memory(self, states: Tensor, mask: Tensor) -> Memory:
        """Encoder states [B, S, D] -> the memory the decoder reads (the attention keys projected once)."""
        if self.attention is None:
            return Memory(None, None, mask)
        return Memory(self.attention.keys(states), states, mask)

    def context_terms(self, weights: Tensor, memory: Memory) -> ContextTerms:
        """Attention weights [B, T, S] -> the context vectors c_t = sum_j a_tj s_j and what they
        add to the features (W_c c_t) and, with Bahdanau attention, to the gates."""
        assert self.combine_context is not None
        context = memory.context(weights)
        gates = None
        if self.kind == "bahdanau":
            assert self.recurrence is not None and self.recurrence.context_gates is not None
            gates = self.recurrence.context_gates(context)
        return ContextTerms(self.combine_context(context), gates)

    def step_weights(self) -> StepWeights:
        """This decoder's step parameters by role (a step-by-step decoder with attention)."""
        recurrence, attention = self.recurrence, self.attention
        assert recurrence is not None and attention is not None and self.combine_hidden is not None
        bahdanau = isinstance(attention, BahdanauAttention)
        return StepWeights(
            recurrence.hidden_gates.weight, recurrence.hidden_gates.bias,
            None if recurrence.feed_gates is None else recurrence.feed_gates.weight,
            attention.query_proj.weight if bahdanau else None,
            attention.energy.weight.squeeze(0) if bahdanau else None,
            self.combine_hidden.weight)

    def initial_state(self, rnn_state: State, batch: int, like: Tensor) -> DecoderState:
        feed = like.new_zeros(batch, self.hidden_size) if self.input_feeding else None
        return DecoderState(rnn_state, feed)

    def features(self, outputs: Tensor, context: Tensor | None) -> Tensor:
        """tanh(W_h h_t + W_c c_t) from the RNN outputs and W_c c_t (``ContextTerms.features``);
        without attention, the outputs."""
        if self.combine_hidden is None:
            return outputs
        assert context is not None
        return torch.tanh(self.combine_hidden(outputs) + context)

    def forward(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int] | None = None
                ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """prev_tokens: [B, T] (starting with <s>). Returns features [B, T, H], the new
        state and attention weights [B, T, S] (None without attention). ``lengths`` (teacher
        forcing): each row's real steps; the reference computes every step and ignores them
        (a variant may skip the steps past a row's length, see :meth:`teacher_forced`)."""
        embedded = self.dropout(self.embed(prev_tokens))
        if self.rnn is not None:
            outputs, rnn_state = recur(self.rnn, embedded, state.rnn)
            weights = self.attention(outputs, memory) if self.attention is not None else None
            context = None if weights is None else self.context_terms(weights, memory).features
            return self.dropout(self.features(outputs, context)), DecoderState(rnn_state), weights
        return self._step_by_step(embedded, state, memory)

    def _step_by_step(self, embedded: Tensor, state: DecoderState, memory: Memory
                      ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """The steps one after the other (Bahdanau attention or input feeding): embedded [B, T, E]."""
        assert self.recurrence is not None
        input_shares = self.recurrence.input_gates(embedded)  # [B, T, G]: every step's at once
        features, all_weights = [], []
        for t in range(embedded.size(1)):
            share, feed = input_shares[:, t], state.feed
            context = weights = None
            if self.kind == "bahdanau":  # the previous state queries; the context joins the input
                assert self.attention is not None
                weights = self.attention(state.top_hidden(), memory)
                context = self.context_terms(weights, memory)
                assert context.gates is not None
                share = share + context.gates[:, 0]
            output, rnn_state = self.recurrence.step(share, feed, state.rnn)
            if self.kind == "luong":  # the new output queries
                assert self.attention is not None
                weights = self.attention(output.unsqueeze(1), memory)
                context = self.context_terms(weights, memory)
            feature = self.features(output, None if context is None else context.features[:, 0])  # [B, H]
            state = DecoderState(rnn_state, feature if self.input_feeding else None)
            features.append(feature)
            all_weights.append(weights)
        stacked = None if all_weights[0] is None else torch.cat(all_weights, dim=1)  # type: ignore[arg-type]
        return self.dropout(torch.stack(features, dim=1)), state, stacked

    def teacher_forced(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int]
                       ) -> tuple[Tensor, Tensor]:
        """Teacher forcing: the features of each row's real steps only, [R, H] (R = sum of
        ``lengths``), and where each is in [B, T] (flat indices, row * T + step), in whatever
        order the decoder computes them (a variant may never compute the padding past a row's
        length)."""
        features, _, _ = self(prev_tokens, state, memory, lengths)
        steps = prev_tokens.size(1)
        real = np.concatenate([row * steps + np.arange(n) for row, n in enumerate(lengths)])
        positions = torch.from_numpy(real).to(features.device, non_blocking=True)  # no host sync on a GPU
        return features.reshape(-1, features.size(-1)).index_select(0, positions), positions
