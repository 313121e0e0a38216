"""The recurrent encoder-decoder: embed -> encode -> (h, c) -> decode -> softmax -> token.

"Encoder packs, decoder unpacks." The encoder reads the source (packed, so padding
never enters the recurrence) and ends in a final state; the bridge turns that state
into the decoder's initial state (the seed's context vector). The decoder then
predicts one target token per step. With ``attention="none"`` that initial state is
all the decoder knows of the source (the seed's model). With ``attention="luong"``
(Luong et al. 2015, "general" score) each decoder step also looks back at every
encoder state and mixes a per-step context into its output.

Shapes use B = batch, S = source length, T = target length, H = hidden size,
E = embedding size, V = vocabulary size, L = layers, D = encoder output size (= H).
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


def select_state(state: State, index: Tensor) -> State:
    """Pick batch rows ``index`` of a state (used to reorder beams)."""
    if isinstance(state, tuple):
        return (state[0].index_select(1, index), state[1].index_select(1, index))
    return state.index_select(1, index)


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
        # A bidirectional encoder splits H between its two directions (H/2 each), so its
        # outputs and final states have size H either way.
        directions = 2 if config.bidirectional else 1
        self.rnn = _rnn(config.cell, config.embedding_size, config.hidden_size // directions, config.layers,
                        config.dropout, config.bidirectional)
        self.output_size = config.hidden_size

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        """src: [B, S] ids; lengths: [B] (on CPU). Returns outputs [B, S, D] (zeros at padding)
        and the final state, h (and c) each [L * directions, B, H / directions]."""
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

    Unidirectional encoders pass the state through unchanged, as in the seed; a
    bidirectional one has its two directions (H/2 each) concatenated and projected.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.layers = config.layers
        self.bidirectional = config.bidirectional
        self.is_lstm = config.cell == "lstm"
        if self.bidirectional:
            self.h_proj = nn.Linear(config.hidden_size, config.hidden_size)
            self.c_proj = nn.Linear(config.hidden_size, config.hidden_size) if self.is_lstm else None

    def _merge(self, x: Tensor, proj: nn.Linear) -> Tensor:
        """x: [L * 2, B, H/2] -> [L, B, H]."""
        _, batch, half = x.shape
        both = x.view(self.layers, 2, batch, half).transpose(1, 2).reshape(self.layers, batch, 2 * half)
        return torch.tanh(proj(both))

    def forward(self, final: State) -> State:
        if not self.bidirectional:
            return final
        if self.is_lstm:
            h, c = final  # type: ignore[misc]
            assert self.c_proj is not None
            return (self._merge(h, self.h_proj), self._merge(c, self.c_proj))
        return self._merge(final, self.h_proj)  # type: ignore[arg-type]


class LuongAttention(nn.Module):
    """score(h_t, s_j) = h_t^T W s_j; keys W s_j are computed once per batch."""

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, states: Tensor) -> Tensor:
        """states: [B, S, D] -> keys [B, S, H]."""
        return self.key_proj(states)

    def forward(self, queries: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """queries: [B, T, H]. Returns context [B, T, D] and weights [B, T, S]."""
        assert memory.keys is not None
        scores = torch.bmm(queries, memory.keys.transpose(1, 2))
        scores = scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, memory.states), weights


class Decoder(nn.Module):
    """Embedding -> LSTM/GRU (from the bridged state) -> [attention] -> output features [B, T, H].

    Without input feeding, every step's input is only the previous target token, so
    under teacher forcing the whole target goes through the RNN in one call; the
    same ``forward`` with T = 1 is one step of search.
    """

    def __init__(self, config: ModelConfig, vocab_size: int, memory_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = _rnn(config.cell, config.embedding_size, config.hidden_size, config.layers,
                        config.dropout, bidirectional=False)
        self.attention = LuongAttention(config.hidden_size, memory_size) if config.attention == "luong" else None
        self.combine = (
            nn.Linear(config.hidden_size + memory_size, config.hidden_size, bias=False)
            if self.attention is not None else None
        )

    def memory(self, states: Tensor, mask: Tensor) -> Memory:
        keys = self.attention.keys(states) if self.attention is not None else None
        return Memory(states, keys, mask)

    def forward(self, prev_tokens: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor | None]:
        """prev_tokens: [B, T] (starting with <s>). Returns features [B, T, H], the new
        state and attention weights [B, T, S] (None without attention)."""
        embedded = self.dropout(self.embed(prev_tokens))
        outputs, state = self.rnn(embedded, state)
        if self.attention is None:
            return self.dropout(outputs), state, None
        assert self.combine is not None
        context, weights = self.attention(outputs, memory)
        features = torch.tanh(self.combine(torch.cat([outputs, context], dim=-1)))
        return self.dropout(features), state, weights


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

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Memory, State]:
        """Encoder packs: returns the memory for attention and the decoder's initial state."""
        states, final = self.encoder(src, src_lengths)
        mask = src != PAD_ID
        return self.decoder.memory(states, mask), self.bridge(final)

    def forward(self, src: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher forcing: feed the gold previous tokens [B, T]; returns features [B, T, H].
        Project with ``self.generator`` (only where the loss needs it)."""
        memory, state = self.encode(src, src_lengths)
        features, _, _ = self.decoder(prev_tokens, state, memory)
        return features

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
