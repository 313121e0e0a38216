"""One declaration per parameter: its default, its range and its one-line meaning, in one place.

A config dataclass declares each field with :func:`param`. Everything else comes from that one
declaration: the range check and its error message (:func:`out_of_range`), the value and
comment that params.yaml holds (:mod:`seq2seq.params.params_file` writes the file from the
declarations), and command-line help. Choices are the field's ``Literal`` type; rules between
parameters stay code, in the config's ``__post_init__``.
"""
from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable


@dataclass(frozen=True)
class Range:
    """Bounds of a number (None: unbounded on that side), and what a special value means."""

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    note: str = ""  # e.g. "0 = off": appended to the advice in parentheses

    def holds(self, value: float) -> bool:
        return ((self.at_least is None or value >= self.at_least) and (self.above is None or value > self.above)
                and (self.at_most is None or value <= self.at_most) and (self.below is None or value < self.below))

    def advice(self, integer: bool) -> str:
        """What to do, as "use an integer >= 1 (0 = off)" or "use a number in [0, 1)"."""
        kind = "an integer" if integer else "a number"
        low = self.at_least if self.at_least is not None else self.above
        high = self.at_most if self.at_most is not None else self.below
        if low is not None and high is not None:
            text = (f"use {kind} in {'[' if self.at_least is not None else '('}{low}, "
                    f"{high}{']' if self.at_most is not None else ')'}")
        elif low is not None:
            text = f"use {kind} {'>=' if self.at_least is not None else '>'} {low}"
        elif high is not None:
            text = f"use {kind} {'<=' if self.at_most is not None else '<'} {high}"
        else:
            text = f"use {kind}"
        return f"{text} ({self.note})" if self.note else text


def param(default: Any, meaning: str, *, at_least: float | None = None, above: float | None = None,
          at_most: float | None = None, below: float | None = None, note: str = "", **names: Any) -> Any:
    """A config field: its default (a callable for a mutable one), its one-line ``meaning`` (params.yaml's
    comment, command-line help), its range, and ``names`` other declarations use (e.g. a flag)."""
    bounds = (at_least, above, at_most, below)
    metadata = {"meaning": meaning, "range": Range(*bounds, note) if any(b is not None for b in bounds) or note
                else None, **names}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


def meaning(f: Field) -> str:
    """The field's one-line meaning, with what its special value means (its range's note)."""
    bounds = f.metadata.get("range")
    note = f" ({bounds.note})" if bounds is not None and bounds.note else ""
    return f.metadata.get("meaning", "") + note


def default_of(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default


def out_of_range(values: dict[str, Any], declared: tuple[Field, ...]) -> tuple[str, str] | None:
    """The first value (field name -> value, in declaration order) outside its declared range, as
    (field name, advice), or None."""
    for f in declared:
        bounds = f.metadata.get("range")
        if bounds is None or f.name not in values:
            continue
        value = values[f.name]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not bounds.holds(value):
            return f.name, bounds.advice(isinstance(f.default, int) and not isinstance(f.default, bool))
    return None


def check_ranges(config: Any, key: Callable[[str], str], error: Callable[[str, Any, str], Exception]) -> None:
    """Raise ``error(key(name), value, advice)`` for the first field of ``config`` outside its range."""
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    bad = out_of_range(values, fields(config))
    if bad:
        name, advice = bad
        raise error(key(name), values[name], advice)
