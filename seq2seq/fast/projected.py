"""The decoder with its memory's shares projected once per batch.

Each encoder state's share of the features, W_c s_j (and, with Bahdanau attention, of the
recurrence's gates), is projected once per batch into the memory; a step mixes those shares
with its attention weights, sum_j a_tj (W_c s_j) = W_c c_t, instead of forming the context
vector c_t and projecting it: one product per batch instead of one per step, the same
arithmetic up to float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..model.attention import Memory
from ..model.decoder import ContextTerms, Decoder


@dataclass
class ProjectedMemory(Memory):
    """A :class:`Memory` with the encoder states' shares projected once per batch instead of the
    states: values W_c s_j [N, S, H], gate_values (Bahdanau) each state's share of the gates
    [N, S, G], else None; ``states`` is None."""

    values: Tensor | None = None
    gate_values: Tensor | None = None


class ProjectedDecoder(Decoder):
    """The decoder with its memory's shares projected once per batch (see the module)."""

    def memory(self, states: Tensor, mask: Tensor) -> Memory:
        if self.attention is None:
            return ProjectedMemory(None, None, mask)
        assert self.combine_context is not None
        gate_values = None
        if self.kind == "bahdanau":
            assert self.recurrence is not None and self.recurrence.context_gates is not None
            gate_values = self.recurrence.context_gates(states)
        return ProjectedMemory(self.attention.keys(states), None, mask, self.combine_context(states), gate_values)

    def context_terms(self, weights: Tensor, memory: Memory) -> ContextTerms:
        assert isinstance(memory, ProjectedMemory) and memory.values is not None
        gates = None if memory.gate_values is None else memory.mix(weights, memory.gate_values)
        return ContextTerms(memory.mix(weights, memory.values), gates)
