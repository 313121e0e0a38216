"""Progress you can watch on a long stage: how far, how fast, how long still to go.

On a terminal, one line rewritten in place (``clean: 1.2 GB of 2.7 GB (44%), 21.3 MB/s, 1:10 left``);
elsewhere quiet, as DVC's own bars are, unless ``$SEQ2SEQ_PROGRESS`` gives a number of seconds: then
one plain line that often, for a log file (``SEQ2SEQ_PROGRESS=30 nohup dvc repro > log &``).
"""
from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from .errors import Seq2SeqError

PROGRESS_ENV = "SEQ2SEQ_PROGRESS"


def duration(seconds: float) -> str:
    """``1:05:09``, ``4:07``: hours only when there are some."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def amount(value: float, unit: str) -> str:
    """``2.7 GB``, ``840 kB`` for bytes (unit ``B``); ``12.4 M pairs``, ``950 steps`` for counts."""
    if unit == "B":
        for scale, prefix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if value >= scale:
                return f"{value / scale:.1f} {prefix}"
        return f"{value:.0f} B"
    if value >= 1e6:
        return f"{value / 1e6:.1f} M {unit}"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


class Progress:
    """Counts what a stage has done of ``total`` (None: unknown, no share or ETA) and shows it."""

    def __init__(self, label: str, total: float | None = None, unit: str = "B", stream: TextIO | None = None,
                 every: float | None = None, clock=time.monotonic) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.done = 0.0
        self.started = self.shown = clock()
        if every is None:
            every = _every_from_environment(self.stream)
        self.every = every  # seconds between lines; None: quiet
        self.in_place = every is not None and _is_terminal(self.stream) and not os.environ.get(PROGRESS_ENV)

    def advance(self, n: float) -> None:
        self.done += n
        now = self.clock()
        if self.every is not None and now - self.shown >= self.every:
            self.shown = now
            self._show(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((self.clock() if now is None else now) - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {amount(self.done, self.unit)}"
        if self.total:
            text += f" of {amount(self.total, self.unit)} ({min(self.done / self.total, 1):.0%})"
        text += f", {amount(rate, self.unit)}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", {duration((self.total - self.done) / rate)} left"
        return text + f" ({duration(elapsed)} so far)"

    def close(self) -> None:
        """End the in-place line (the caller prints its own summary)."""
        if self.in_place and self.shown > self.started:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, text: str) -> None:
        if self.in_place:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _every_from_environment(stream: TextIO) -> float | None:
    value = os.environ.get(PROGRESS_ENV, "").strip()
    if value:
        try:
            seconds = float(value)
        except ValueError:
            raise Seq2SeqError(f"${PROGRESS_ENV}={value!r}: not a number of seconds; set it to how often a "
                               "progress line is written (e.g. 30; 0: never), or unset it") from None
        return seconds if seconds > 0 else None
    return 0.5 if _is_terminal(stream) else None
