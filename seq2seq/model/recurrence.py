"""The decoder's recurrence one step at a time, with layer 0's input split by where it comes from.

Layer 0 of an LSTM or GRU computes its gates as ``W_ih x + b_ih`` (the input's share) and
``W_hh h + b_hh`` (the previous state's share). When the decoder's input x is a
concatenation ``[embedding; context; fed-back attentional vector]``, ``W_ih x`` is the sum
of one share per part, and each share can be computed where it costs least:

* the embedding's share for every target position at once, in one large product
  (training), instead of inside the step;
* the context's share (``context_gates``), the fed-back vector's share (``feed_gates``) and
  the hidden state's share (``hidden_gates``) inside the step.

The arithmetic is the same as ``nn.LSTM``/``nn.GRU`` over the concatenated input (the
parameters are layer 0's, split by columns), up to float rounding. Layers above the first
are a plain ``nn.LSTM``/``nn.GRU`` fed with layer 0's output, with dropout between them
as ``nn.LSTM`` applies it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

# An RNN state: h [L, B, H] for GRU, (h, c) for LSTM.
State = Tensor | tuple[Tensor, Tensor]


def recurrent_layers(cell: str, input_size: int, hidden: int, layers: int, dropout: float,
                     bidirectional: bool) -> nn.RNNBase:
    """A PyTorch LSTM/GRU over whole sequences (batch first)."""
    cls = nn.LSTM if cell == "lstm" else nn.GRU
    return cls(
        input_size, hidden, num_layers=layers, batch_first=True,
        dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional,
    )


def recur(rnn: nn.RNNBase, inputs: Tensor | PackedSequence, state: "State | None" = None
          ) -> tuple[Tensor | PackedSequence, "State"]:
    """``rnn(inputs, state)``, with bf16 meaning bf16 on a CUDA GPU: there PyTorch's autocast runs
    cuDNN recurrences in float16 whatever dtype it was given (and training has no gradient
    scaling for it), so under bf16 autocast the recurrence runs outside it, on bf16 copies of its
    inputs and weights (the gradients still reach the float32 weights)."""
    data = inputs.data if isinstance(inputs, PackedSequence) else inputs
    if not (data.is_cuda and torch.is_autocast_enabled("cuda")
            and torch.get_autocast_dtype("cuda") == torch.bfloat16):
        return rnn(inputs, state)
    return in_dtype(rnn, inputs, state, torch.bfloat16)


def in_dtype(rnn: nn.RNNBase, inputs: Tensor | PackedSequence, state: "State | None", dtype: torch.dtype
             ) -> tuple[Tensor | PackedSequence, "State"]:
    """``rnn`` run on ``dtype`` copies of its inputs, state and weights, outside autocast."""
    device_type = (inputs.data if isinstance(inputs, PackedSequence) else inputs).device.type
    cast = inputs._replace(data=inputs.data.to(dtype)) if isinstance(inputs, PackedSequence) else inputs.to(dtype)
    if state is not None:
        state = tuple(s.to(dtype) for s in state) if isinstance(state, tuple) else state.to(dtype)
    weights = {name: w.to(dtype) for name, w in rnn.named_parameters()}
    with torch.autocast(device_type, enabled=False):
        return torch.func.functional_call(rnn, weights, (cast, state))


def gate_count(cell: str) -> int:
    """Gates per hidden unit: LSTM i, f, g, o; GRU r, z, n (PyTorch's row order)."""
    return 4 if cell == "lstm" else 3


class StepRecurrence(nn.Module):
    """LSTM/GRU layers run one step at a time, layer 0's input given as gate shares.

    ``input_gates`` projects the embedding (and holds ``b_ih``); ``context_gates`` (when
    the context joins the input, as with Bahdanau attention) projects the context vector;
    ``feed_gates`` (input feeding) projects the
    previous step's attentional vector; ``hidden_gates`` projects the previous hidden
    state (and holds ``b_hh``).
    """

    dropout_class: type[nn.Module] = nn.Dropout

    def __init__(self, cell: str, embedding_size: int, context_size: int, feed_size: int, hidden: int,
                 layers: int, dropout: float) -> None:
        super().__init__()
        self.is_lstm = cell == "lstm"
        self.hidden_size = hidden
        gates = gate_count(cell) * hidden
        self.input_gates = nn.Linear(embedding_size, gates)
        self.context_gates = nn.Linear(context_size, gates, bias=False) if context_size else None
        self.feed_gates = nn.Linear(feed_size, gates, bias=False) if feed_size else None
        self.hidden_gates = nn.Linear(hidden, gates)
        self.between = self.dropout_class(dropout)
        self.upper = recurrent_layers(cell, hidden, hidden, layers - 1, dropout, False) if layers > 1 else None
        self._init_like_pytorch(hidden)

    def _init_like_pytorch(self, hidden: int) -> None:
        """nn.LSTM/nn.GRU's initialisation: every weight and bias uniform in +-1/sqrt(hidden)."""
        bound = hidden ** -0.5
        for name, parameter in self.named_parameters():
            if not name.startswith("upper."):
                nn.init.uniform_(parameter, -bound, bound)

    def step(self, input_share: Tensor, feed: Tensor | None, state: State) -> tuple[Tensor, State]:
        """One step. input_share: [B, G], the embedding's share plus the context's (if any);
        feed: [B, H] or None; state: h (and c) [L, B, H]. Returns the top layer's output
        [B, H] and the new state."""
        if feed is not None:
            assert self.feed_gates is not None
            input_share = input_share + self.feed_gates(feed)
        if self.is_lstm:
            h, c = state  # type: ignore[misc]
            return self._lstm_pointwise(input_share + self.hidden_gates(h[0]), h, c)
        h = state  # type: ignore[assignment]
        input_r, input_z, input_n = input_share.chunk(3, dim=-1)
        hidden_r, hidden_z, hidden_n = self.hidden_gates(h[0]).chunk(3, dim=-1)
        r = torch.sigmoid(input_r + hidden_r)
        z = torch.sigmoid(input_z + hidden_z)
        n = torch.tanh(input_n + r * hidden_n)
        h0 = n + z * (h[0] - n)  # (1 - z) n + z h
        if self.upper is None:
            return h0, h0.unsqueeze(0)
        above = self.between(h0).unsqueeze(1)
        output, h_up = recur(self.upper, above, h[1:])
        return output[:, 0], torch.cat([h0.unsqueeze(0), h_up])

    def _lstm_pointwise(self, gates: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, State]:
        """Layer 0's LSTM cell from its summed gates [B, 4H], then the layers above."""
        i, f, _, o = torch.sigmoid(gates).chunk(4, dim=-1)  # one call; the candidate's is unused
        hidden = self.hidden_size
        c0 = torch.addcmul(f * c[0], i, torch.tanh(gates[..., 2 * hidden:3 * hidden]))
        h0 = o * torch.tanh(c0)
        if self.upper is None:
            return h0, (h0.unsqueeze(0), c0.unsqueeze(0))
        output, (h_up, c_up) = recur(self.upper, self.between(h0).unsqueeze(1), (h[1:], c[1:]))
        return output[:, 0], (torch.cat([h0.unsqueeze(0), h_up]), torch.cat([c0.unsqueeze(0), c_up]))
