"""An exponential moving average of the weights while training (``train.ema_decay``).

After every optimizer step ``average = d * average + (1 - d) * weights`` (Polyak averaging;
Marian's exponential smoothing), with the decay warmed up as Marian does, ``d = min(decay,
(1 + step) / (10 + step))``, so the first steps' random weights fade at once. The average is
what is validated, kept and saved; training goes on from the raw weights. It is part of every
checkpoint, so a resumed run ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class MovingAverage:
    """The moving average of ``model``'s parameters, decaying by ``decay`` per step."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"a moving average's decay is in (0, 1): got {decay}")
        self.decay = decay
        named = list(model.named_parameters())
        self.names = [name for name, _ in named]
        self.parameters = [p.detach() for _, p in named]  # views: the optimizer updates them in place
        self.average = [p.clone() for p in self.parameters]

    def update(self, step: int) -> None:
        """Fold in the weights after optimizer step ``step`` (counted from 1)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(self.average, self.parameters, 1.0 - decay)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own again after it."""
        with torch.no_grad():
            own = [p.clone() for p in self.parameters]
            for p, a in zip(self.parameters, self.average):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, o in zip(self.parameters, own):
                    p.copy_(o)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.average))

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.names) - set(state)
        if missing:
            raise KeyError(f"the moving average lacks {sorted(missing)[:3]}")
        with torch.no_grad():
            for a, name in zip(self.average, self.names):
                a.copy_(state[name])
