"""The recurrent encoder-decoder: embed -> encode -> (h, c) -> decode -> softmax -> token.

"Encoder packs, decoder unpacks." The encoder (:mod:`.encoder`) reads the source (packed,
so padding never enters the recurrence) and ends in a final state; the bridge turns that
state into the decoder's initial state (the seed's context vector). The decoder
(:mod:`.decoder`) then predicts one target token per step. With ``attention="none"`` that
initial state is all the decoder knows of the source (the seed's model). With ``luong``
(Luong et al. 2015) or ``bahdanau`` (Bahdanau et al. 2015) attention (:mod:`.attention`)
each decoder step also looks back at every encoder state and builds a per-step context.

Shapes use B = batch, S = source length, T = target length, H = hidden size, V = vocabulary size.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.token_ids import PAD_ID
from ..params.config import ModelConfig
from .attention import Memory
from .decoder import Decoder, DecoderState
from .encoder import Bridge, Encoder


def scaled_normal_(table: nn.Embedding) -> None:
    """Embeddings N(0, 1/E) with the padding row zero: with tied embeddings, the first logits then
    have the scale of the features instead of sqrt(H) times it."""
    nn.init.normal_(table.weight, 0.0, table.embedding_dim ** -0.5)
    if table.padding_idx is not None:
        with torch.no_grad():
            table.weight[table.padding_idx].zero_()


class Seq2Seq(nn.Module):
    """Encoder + bridge + decoder + generator (features -> vocabulary logits).

    The reference: the model as the papers write it. A variant (:mod:`seq2seq.fast`) is a
    subclass that names faster encoder and decoder classes (``encoder_class``,
    ``decoder_class``) declaring the same parameters, so that the weights of one load into
    the other."""

    encoder_class: type[Encoder] = Encoder
    decoder_class: type[Decoder] = Decoder

    def __init__(self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.encoder = self.encoder_class(config, src_vocab_size)
        self.bridge = Bridge(config)
        self.decoder = self.decoder_class(config, tgt_vocab_size, self.encoder.output_size)
        self.generator = nn.Linear(config.hidden_size, tgt_vocab_size)
        if config.embedding_init == "scaled":
            for table in (self.encoder.embed, self.decoder.embed):
                scaled_normal_(table)
        if config.tie_embeddings:
            self.generator.weight = self.decoder.embed.weight

    def encode(self, src: Tensor, src_lengths: Tensor, packed: bool = False) -> tuple[Memory, DecoderState]:
        """Encoder packs: returns the memory for attention and the decoder's initial state.
        ``packed``: see :meth:`Encoder.forward`."""
        states, final = self.encoder(src, src_lengths, packed)
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
