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

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .config import ModelConfig
from .subwords import PAD_ID

# An RNN state: h [L, B, H] for GRU, (h, c) for LSTM.
State = Tensor | tuple[Tensor, Tensor]


def _rnn(cell: str, input_size: int, hidden: int, layers: int, dropout: float, bidirectional: bool) -> nn.RNNBase:
    cls = nn.LSTM if cell == "lstm" else nn.GRU
    return cls(
        input_size, hidden, num_layers=layers, batch_first=True,
        dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional,
    )


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
    """What the decoder may look at: encoder outputs, their attention keys and the padding mask.

    states: [B, S, D]; keys: [B, S, H] (states projected once per batch, or None without
    attention); mask: [B, S], True at real tokens.
    """

    states: Tensor
    keys: Tensor | None
    mask: Tensor

    def select(self, index: Tensor) -> "Memory":
        keys = None if self.keys is None else self.keys.index_select(0, index)
        return Memory(self.states.index_select(0, index), keys, self.mask.index_select(0, index))


class Encoder(nn.Module):
    """Embedding -> LSTM/GRU (optionally bidirectional) over packed sequences."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.dropout)
        # A bidirectional encoder splits D between its two directions (D/2 each), so its
        # outputs have size D either way.
        directions = 2 if config.bidirectional else 1
        self.rnn = _rnn(config.cell, config.embedding_size, config.encoder_size // directions, config.layers,
                        config.dropout, config.bidirectional)
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
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))
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


def _attend(scores: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
    """scores: [B, T, S] -> context [B, T, D] and weights [B, T, S]; padding gets weight 0."""
    scores = scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.bmm(weights, memory.states), weights


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

    def forward(self, queries: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """queries: [B, T, H]. Returns context [B, T, D] and weights [B, T, S]."""
        assert memory.keys is not None
        return _attend(torch.bmm(queries, memory.keys.transpose(1, 2)), memory)


class BahdanauAttention(nn.Module):
    """Additive attention (Bahdanau et al. 2015), queried with the previous decoder state:
    score(q, s_j) = v^T tanh(W q + U s_j); keys U s_j are computed once per batch."""

    def __init__(self, query_size: int, memory_size: int, hidden: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(memory_size, hidden, bias=False)
        self.query_proj = nn.Linear(query_size, hidden, bias=False)
        self.energy = nn.Linear(hidden, 1, bias=False)

    def keys(self, states: Tensor) -> Tensor:
        return self.key_proj(states)

    def forward(self, queries: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """queries: [B, T, H]. Returns context [B, T, D] and weights [B, T, S]."""
        assert memory.keys is not None
        # v^T tanh(z) computed as (2v)^T sigmoid(2z) - sum(v): the same value, and sigmoid is
        # about 3x faster than tanh on CPU over this [B, T, S, A] tensor, the largest of a step.
        gates = torch.sigmoid((self.query_proj(queries).unsqueeze(2) + memory.keys.unsqueeze(1)).mul_(2))
        v = self.energy.weight.squeeze(0)
        return _attend(torch.matmul(gates, v * 2) - v.sum(), memory)


class Decoder(nn.Module):
    """Embedding -> LSTM/GRU (from the bridged state) -> [attention] -> output features [B, T, H].

    * ``none``: features are the RNN outputs (the seed's model: the bridged state is
      all the decoder knows of the source).
    * ``luong``: the RNN output h_t queries the encoder states; features =
      tanh(W [h_t; context]).
    * ``bahdanau``: the previous state queries the encoder states before the step, the
      context joins the step's input; features = tanh(W [h_t; context]).
    * ``input_feeding``: the previous step's features join the next step's input.

    With ``none`` or ``luong`` and no input feeding, every step's input is only the
    previous target token, so under teacher forcing the whole target goes through the
    RNN in one call (the fast path). Otherwise the steps run one by one. Either way
    ``forward`` with T = 1 is one step of search.
    """

    def __init__(self, config: ModelConfig, vocab_size: int, memory_size: int) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.kind = config.attention
        self.input_feeding = config.input_feeding
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.dropout)
        rnn_input = config.embedding_size + (memory_size if self.kind == "bahdanau" else 0) + (
            hidden if self.input_feeding else 0)
        self.rnn = _rnn(config.cell, rnn_input, hidden, config.layers, config.dropout, bidirectional=False)
        self.attention: LuongAttention | BahdanauAttention | None = None
        if self.kind == "luong":
            self.attention = LuongAttention(hidden, memory_size, config.luong_score)
        elif self.kind == "bahdanau":
            self.attention = BahdanauAttention(hidden, memory_size, hidden)
        self.combine = nn.Linear(hidden + memory_size, hidden, bias=False) if self.attention is not None else None
        self.stepwise = self.kind == "bahdanau" or self.input_feeding

    def memory(self, states: Tensor, mask: Tensor) -> Memory:
        keys = self.attention.keys(states) if self.attention is not None else None
        return Memory(states, keys, mask)

    def initial_state(self, rnn_state: State, batch: int, like: Tensor) -> DecoderState:
        feed = like.new_zeros(batch, self.rnn.hidden_size) if self.input_feeding else None
        return DecoderState(rnn_state, feed)

    def _features(self, outputs: Tensor, context: Tensor | None) -> Tensor:
        if self.combine is None:
            return outputs
        assert context is not None
        return torch.tanh(self.combine(torch.cat([outputs, context], dim=-1)))

    def forward(self, prev_tokens: Tensor, state: DecoderState, memory: Memory
                ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """prev_tokens: [B, T] (starting with <s>). Returns features [B, T, H], the new
        state and attention weights [B, T, S] (None without attention)."""
        embedded = self.dropout(self.embed(prev_tokens))
        if not self.stepwise:
            outputs, rnn_state = self.rnn(embedded, state.rnn)
            context, weights = self.attention(outputs, memory) if self.attention is not None else (None, None)
            return self.dropout(self._features(outputs, context)), DecoderState(rnn_state), weights
        features, all_weights = [], []
        for t in range(prev_tokens.size(1)):
            step_input = [embedded[:, t:t + 1]]
            context = weights = None
            if self.kind == "bahdanau":
                assert self.attention is not None
                context, weights = self.attention(state.top_hidden(), memory)
                step_input.append(context)
            if self.input_feeding:
                assert state.feed is not None
                step_input.append(state.feed.unsqueeze(1))
            output, rnn_state = self.rnn(torch.cat(step_input, dim=-1), state.rnn)
            if self.kind == "luong":
                assert self.attention is not None
                context, weights = self.attention(output, memory)
            feature = self._features(output, context)  # [B, 1, H]
            state = DecoderState(rnn_state, feature.squeeze(1) if self.input_feeding else None)
            features.append(feature)
            all_weights.append(weights)
        stacked = None if all_weights[0] is None else torch.cat(all_weights, dim=1)  # type: ignore[arg-type]
        return self.dropout(torch.cat(features, dim=1)), state, stacked


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

    def forward(self, src: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher forcing: feed the gold previous tokens [B, T]; returns features [B, T, H].
        Project with ``self.generator`` (only where the loss needs it)."""
        memory, state = self.encode(src, src_lengths)
        features, _, _ = self.decoder(prev_tokens, state, memory)
        return features

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
