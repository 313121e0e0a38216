"""The model's variants: subclasses of the reference (:mod:`seq2seq.model`) that compute the same
faster, declare the same parameters (the weights of one load into the other), and are chosen
when the model is built (:func:`build_model`).

* :class:`ProjectedSeq2Seq`, on every device and in exported graphs: the memory holds the
  encoder states' shares of the features (and gates) projected once per batch instead of
  a context vector projected every step (:mod:`.projected`).
* :class:`CpuSeq2Seq`, for the CPU (the tricks measured there, docs/performance.md): all
  teacher-forced steps of a step-by-step decoder as one function with a hand-written backward
  (:mod:`.unrolled`), dropout masks drawn as uniforms (:mod:`.dropout`), a padded batch of a few
  source lengths encoded one length at a time.
* :class:`Int8Seq2Seq`, for PyTorch's dynamic int8 quantization on the CPU: an LSTM step with
  input feeding makes one product over [feed; h] (one quantization of its input, not two).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..model.attention import Memory
from ..model.decoder import DecoderState
from ..model.encoder import Encoder
from ..model.recurrence import State, StepRecurrence, recur
from ..model.seq2seq import Seq2Seq
from ..params.config import ModelConfig
from .dropout import Dropout
from .projected import ProjectedDecoder
from .unrolled import UnrolledSteps


class ProjectedSeq2Seq(Seq2Seq):
    decoder_class = ProjectedDecoder


class CpuEncoder(Encoder):
    """A padded batch of at most ``MAX_LENGTH_GROUPS`` distinct source lengths runs as one unpadded
    call per length (the fused kernel; about 20% faster on CPU than a packed call)."""

    dropout_class = Dropout
    MAX_LENGTH_GROUPS = 4

    def padded(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        distinct = lengths.unique()
        if embedded.device.type != "cpu" or len(distinct) > self.MAX_LENGTH_GROUPS:
            return super().padded(embedded, lengths)
        return self._by_length(embedded, lengths, distinct.tolist())

    def _by_length(self, embedded: Tensor, lengths: Tensor, distinct: list[int]) -> tuple[Tensor, State]:
        """The same outputs and final state as a packed call, from one call per source length."""
        outputs: Tensor | None = None
        finals, rows = [], []
        for length in distinct:
            index = (lengths == length).nonzero().squeeze(1).to(embedded.device)
            out, final = recur(self.rnn, embedded[index, :length])
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


class CpuStepRecurrence(StepRecurrence):
    dropout_class = Dropout


class CpuDecoder(ProjectedDecoder):
    """Under teacher forcing, a one-layer step-by-step decoder with attention runs all its steps
    in :class:`~seq2seq.fast.unrolled.UnrolledSteps` (each row only up to its length)."""

    dropout_class = Dropout
    recurrence_class = CpuStepRecurrence

    def __init__(self, config: ModelConfig, vocab_size: int, memory_size: int) -> None:
        super().__init__(config, vocab_size, memory_size)
        self.unrolled = UnrolledSteps()

    def forward(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int] | None = None
                ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """As :meth:`Decoder.forward`; where the unrolled steps run, a row's steps past its length
        are skipped: its features and weights there are zero and the returned state is the one
        after its own last step."""
        if not self.unrolled.applies(self, prev_tokens, memory):
            return super().forward(prev_tokens, state, memory, lengths)
        features, positions, final, weights = self.unrolled(self, prev_tokens, state, memory, lengths)
        batch, steps = prev_tokens.shape
        by_position = features.new_zeros(batch * steps, features.size(1)).index_copy(0, positions, features)
        return by_position.view(batch, steps, -1), final, weights

    def teacher_forced(self, prev_tokens: Tensor, state: DecoderState, memory: Memory, lengths: list[int]
                       ) -> tuple[Tensor, Tensor]:
        if not self.unrolled.applies(self, prev_tokens, memory):
            return super().teacher_forced(prev_tokens, state, memory, lengths)
        features, positions, _, _ = self.unrolled(self, prev_tokens, state, memory, lengths)
        return features, positions


class CpuSeq2Seq(Seq2Seq):
    encoder_class = CpuEncoder
    decoder_class = CpuDecoder


class FusedFeedRecurrence(CpuStepRecurrence):
    """An LSTM step with input feeding as one product over [feed; h] with [W_feed, W_hidden]
    (``feed_hidden_gates``, filled from the reference's ``feed_gates`` and ``hidden_gates``
    whenever weights are loaded); a GRU needs W_hn h apart, so it keeps the two products."""

    def __init__(self, cell: str, embedding_size: int, context_size: int, feed_size: int, hidden: int,
                 layers: int, dropout: float) -> None:
        super().__init__(cell, embedding_size, context_size, feed_size, hidden, layers, dropout)
        self.feed_hidden_gates: nn.Linear | None = None
        if self.is_lstm and self.feed_gates is not None:
            # built without random draws (the other weights are the reference's), then filled
            fused = nn.Linear(feed_size + hidden, self.hidden_gates.out_features, device="meta")
            self.feed_hidden_gates = fused.to_empty(device=self.hidden_gates.weight.device)
            with torch.no_grad():  # from the weights just drawn, as from any loaded ones (_fuse_loaded)
                self.feed_hidden_gates.load_state_dict(self._fused(self.state_dict()))
            self._register_load_state_dict_pre_hook(self._fuse_loaded)

    @staticmethod
    def _fused(weights: dict, prefix: str = "") -> dict:
        """The fused product's weight and bias from the feed and hidden ones in ``weights``."""
        return {"weight": torch.cat([weights[prefix + "feed_gates.weight"], weights[prefix + "hidden_gates.weight"]],
                                    dim=1),
                "bias": weights[prefix + "hidden_gates.bias"]}

    def _fuse_loaded(self, state_dict: dict, prefix: str, *_args: object) -> None:
        """The fused product's weights, from the loaded feed and hidden ones."""
        if all(prefix + name in state_dict for name in ("feed_gates.weight", "hidden_gates.weight",
                                                         "hidden_gates.bias")):
            state_dict.update({prefix + "feed_hidden_gates." + key: value
                               for key, value in self._fused(state_dict, prefix).items()})

    def step(self, input_share: Tensor, feed: Tensor | None, state: State) -> tuple[Tensor, State]:
        if self.feed_hidden_gates is None:
            return super().step(input_share, feed, state)
        h, c = state  # type: ignore[misc]
        gates = input_share + self.feed_hidden_gates(torch.cat([feed, h[0]], dim=-1))  # type: ignore[list-item]
        return self._lstm_pointwise(gates, h, c)


class Int8Decoder(CpuDecoder):
    recurrence_class = FusedFeedRecurrence


class Int8Seq2Seq(CpuSeq2Seq):
    decoder_class = Int8Decoder


def build_model(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int,
                device: torch.device | str | None = "cpu", int8: bool = False) -> Seq2Seq:
    """The variant for where the model runs: on a CPU :class:`CpuSeq2Seq` (:class:`Int8Seq2Seq`
    with ``int8``), elsewhere or with no device (an exported graph) :class:`ProjectedSeq2Seq`.
    Its initial weights are the reference's (the same random draws)."""
    if device is not None and torch.device(device).type == "cpu":
        variant: type[Seq2Seq] = Int8Seq2Seq if int8 else CpuSeq2Seq
    elif int8:
        raise ValueError("int8 runs on the CPU only")
    else:
        variant = ProjectedSeq2Seq
    return variant(config, src_vocab_size, tgt_vocab_size)


def as_variant(model: Seq2Seq, variant: type[Seq2Seq]) -> Seq2Seq:
    """A new model of class ``variant`` holding ``model``'s weights, in its dtype, device and mode
    (``model`` is left as it is)."""
    like = next(model.parameters())
    built = variant(model.config, model.src_vocab_size, model.tgt_vocab_size).to(like.device, like.dtype)
    built.load_state_dict(model.state_dict())
    return built.train(model.training)
