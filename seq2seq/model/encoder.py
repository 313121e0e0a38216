"""Encoder packs: the source sentence -> encoder states [B, S, D] and a final state; the bridge
turns that final state into the decoder's initial state (the seed's context vector).

Shapes: B batch, S source length, E embedding size, H decoder hidden size, L layers,
D encoder output size (``model.encoder_hidden_size``, H unless set; a bidirectional encoder
gives D/2 to each direction).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..core.token_ids import PAD_ID
from ..params.config import ModelConfig
from .recurrence import State, recur, recurrent_layers


class Encoder(nn.Module):
    """Embedding -> LSTM/GRU (optionally bidirectional); padding never enters the recurrence."""

    dropout_class: type[nn.Module] = nn.Dropout

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD_ID)
        self.dropout = self.dropout_class(config.dropout)
        # A bidirectional encoder splits D between its two directions (D/2 each), so its
        # outputs have size D either way.
        directions = 2 if config.bidirectional else 1
        self.rnn = recurrent_layers(config.cell, config.embedding_size, config.encoder_size // directions,
                                    config.layers, config.dropout, config.bidirectional)
        self.output_size = config.encoder_size

    def forward(self, src: Tensor, lengths: Tensor, packed: bool = False) -> tuple[Tensor, State]:
        """src: [B, S] ids; lengths: [B] (on CPU). Returns outputs [B, S, D] (zeros at padding)
        and the final state, h (and c) each [L * directions, B, D / directions].

        ``packed``: always one packed call, whatever the lengths (the same result; one graph
        for every batch, as an exported model needs)."""
        embedded = self.dropout(self.embed(src))
        lengths = lengths.cpu()
        if packed:
            return self._packed(embedded, lengths)
        if bool((lengths == src.size(1)).all()):
            # No padding at all (the usual case with length-bucketed batches): the plain
            # call gives the same result as a packed one and runs the fused kernel.
            return recur(self.rnn, embedded)
        return self.padded(embedded, lengths)

    def padded(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        """A batch with padding: one packed call (on a GPU with the rows sorted on the host)."""
        if embedded.device.type != "cpu":
            return self._packed_sorted_on_host(embedded, lengths)
        return self._packed(embedded, lengths)

    def _packed(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, final = recur(self.rnn, packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=embedded.size(1))
        return outputs, final

    def _packed_sorted_on_host(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        """What :meth:`_packed` computes (one cuDNN call over every length), with the rows sorted
        by length on the host and the order sent without waiting: no host synchronisation."""
        sorted_lengths, order = torch.sort(lengths, descending=True)
        back = torch.empty_like(order)
        back[order] = torch.arange(order.numel())
        order_on, back_on = (i.to(embedded.device, non_blocking=True) for i in (order, back))
        packed = pack_padded_sequence(embedded.index_select(0, order_on), sorted_lengths, batch_first=True)
        outputs, final = recur(self.rnn, packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=embedded.size(1))
        if isinstance(final, tuple):
            return outputs.index_select(0, back_on), (final[0].index_select(1, back_on),
                                                      final[1].index_select(1, back_on))
        return outputs.index_select(0, back_on), final.index_select(1, back_on)


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
