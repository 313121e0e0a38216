"""Schedules over training steps: the learning rate and the teacher-forcing ratio.

Both are plain functions of the step (plus, for reduce-on-plateau, a small state fed
by validations), so a resumed run picks them up exactly where it stopped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def warmup_factor(step: int, warmup: int) -> float:
    """Linear warm-up from 1/warmup to 1 over the first ``warmup`` steps."""
    return (step + 1) / warmup if warmup and step < warmup else 1.0


def lr_factor(step: int, warmup: int, total: int, final_fraction: float) -> float:
    """Linear warm-up to 1, then linear decay to ``final_fraction`` at ``total`` steps."""
    if warmup and step < warmup:
        return warmup_factor(step, warmup)
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return 1.0 - (1.0 - final_fraction) * progress


@dataclass
class LearningRateSchedule:
    """The multiplier on ``train.learning_rate`` at each step.

    ``linear``: warm-up, then a straight line down to ``floor`` at the last step.
    ``constant``: warm-up, then 1.
    ``plateau``: warm-up, then 1, cut by ``cut`` each time the watched validation metric
    (lower is better) has not improved for ``patience`` validations in a row, never
    below ``floor``.
    """

    kind: str
    warmup: int
    total_steps: int
    floor: float
    cut: float = 0.5
    patience: int = 1
    scale: float = 1.0
    best: float = math.inf
    bad_validations: int = 0

    def factor(self, step: int) -> float:
        if self.kind == "linear":
            return lr_factor(step, self.warmup, self.total_steps, self.floor)
        if self.kind == "plateau":
            return warmup_factor(step, self.warmup) * self.scale
        return warmup_factor(step, self.warmup)

    def observe(self, value: float) -> bool:
        """Feed one validation's metric (lower is better); True if the rate was just cut."""
        if self.kind != "plateau":
            return False
        if value < self.best:
            self.best, self.bad_validations = value, 0
            return False
        self.bad_validations += 1
        if self.bad_validations < self.patience or self.scale <= self.floor:
            return False
        self.scale, self.bad_validations = max(self.floor, self.scale * self.cut), 0
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale, self.best, self.bad_validations = state["scale"], state["best"], state["bad_validations"]


def teacher_forcing_ratio(step: int, total: int, start: float, end: float, schedule: str) -> float:
    """Share of gold previous tokens at ``step``: scheduled from ``start`` down to ``end``.

    ``linear``: a straight line over the run. ``inverse_sigmoid`` (Bengio et al. 2015):
    k / (k + exp(step / k)), which stays near ``start`` early, falls fastest mid-run and
    flattens near ``end``; k is chosen so the midpoint falls at half the steps.
    """
    if start == end or total <= 0:
        return start
    progress = min(1.0, step / total)
    if schedule == "linear":
        return start + (end - start) * progress
    k = _inverse_sigmoid_k(total)
    decay = k / (k + math.exp(min(step / k, 700.0)))  # 1 -> 0
    return end + (start - end) * decay


def _inverse_sigmoid_k(total: int) -> float:
    """k with k * ln(k) = total / 2 (the decay k / (k + exp(i / k)) is 0.5 there)."""
    low, high = 1.0 + 1e-9, max(3.0, float(total))
    for _ in range(100):
        mid = (low + high) / 2
        if mid * math.log(mid) < total / 2:
            low = mid
        else:
            high = mid
    return (low + high) / 2
