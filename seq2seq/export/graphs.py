"""The model as two graphs with flat tensor inputs and outputs: the encoder, and one decoder step.

ONNX graphs take and give tensors, not the :class:`~seq2seq.model.decoder.DecoderState` and
:class:`~seq2seq.model.attention.Memory` the model passes around, so these wrappers flatten
them under fixed names (listed in ``export.json``):

* state: ``h`` [L, R, H], ``c`` [L, R, H] (LSTM), ``feed`` [R, H] (input feeding);
* memory: ``keys`` [N, S, A], ``values`` [N, S, H], ``gate_values`` [N, S, G] (Bahdanau),
  ``mask`` [N, S] (bool), with attention only.

The encoder always runs packed (one graph for any lengths); the step is the model's own
``decoder`` with T = 1 and the generator, ending in log-probabilities.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..fast.projected import ProjectedMemory
from ..model.attention import Memory
from ..model.decoder import DecoderState
from ..model.seq2seq import Seq2Seq


def state_names(model: Seq2Seq) -> list[str]:
    names = ["h", "c"] if model.config.cell == "lstm" else ["h"]
    return names + (["feed"] if model.config.input_feeding else [])


def memory_names(model: Seq2Seq) -> list[str]:
    if model.config.attention == "none":
        return []
    return ["keys", "values"] + (["gate_values"] if model.config.attention == "bahdanau" else []) + ["mask"]


def flat_state(state: DecoderState) -> list[Tensor]:
    rnn = list(state.rnn) if isinstance(state.rnn, tuple) else [state.rnn]
    return rnn + ([] if state.feed is None else [state.feed])


def flat_memory(memory: Memory, names: list[str]) -> list[Tensor]:
    return [getattr(memory, name) for name in names]


def encoder_outputs(model: Seq2Seq) -> list[str]:
    """The encoder graph's outputs: the state, the memory, and without attention the encoder
    states [B, S, D] (unused, but the exporter fails when the unpacking of a packed RNN
    call feeds nothing)."""
    return state_names(model) + (memory_names(model) or ["states"])


class EncoderGraph(nn.Module):
    """(src [B, S], src_lengths [B]) -> :func:`encoder_outputs` (flat, named)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.memory_names = memory_names(model)

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        if not self.memory_names:
            states, final = self.model.encoder(src, src_lengths, packed=True)
            state = self.model.decoder.initial_state(self.model.bridge(final), src.size(0), states)
            return tuple(flat_state(state) + [states])
        memory, state = self.model.encode(src, src_lengths, packed=True)
        return tuple(flat_state(state) + flat_memory(memory, self.memory_names))


class StepGraph(nn.Module):
    """(tokens [R, 1], state..., memory...) -> (log-probabilities [R, V], next state..., [weights [R, S]])."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.is_lstm = model.config.cell == "lstm"
        self.feeds = model.config.input_feeding
        self.memory_names = memory_names(model)

    def forward(self, tokens: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
        count = len(state_names(self.model))
        state_part, memory_part = tensors[:count], tensors[count:]
        rnn = (state_part[0], state_part[1]) if self.is_lstm else state_part[0]
        state = DecoderState(rnn, state_part[-1] if self.feeds else None)
        named = dict(zip(self.memory_names, memory_part))
        if named:
            memory = ProjectedMemory(named["keys"], None, named["mask"], named["values"], named.get("gate_values"))
        else:  # no attention: the decoder never reads its memory
            memory = Memory(None, None, tokens.new_ones(0, 0, dtype=torch.bool))
        features, next_state, weights = self.model.decoder(tokens, state, memory)
        log_probs = torch.log_softmax(self.model.generator(features[:, -1]).float(), dim=-1)
        extra = [] if weights is None else [weights[:, -1]]
        return tuple([log_probs] + flat_state(next_state) + extra)
