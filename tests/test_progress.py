"""Progress lines on long stages: rate and time left, in place on a terminal, quiet elsewhere unless asked."""
import io

import pytest

from seq2seq.core.errors import Seq2SeqError
from seq2seq.core.progress import PROGRESS_ENV, Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_says_how_far_how_fast_and_how_long_is_left():
    clock = Clock()
    progress = Progress("clean", total=2_700_000_000, stream=io.StringIO(), every=None, clock=clock)
    clock.now += 60
    progress.advance(900_000_000)
    assert progress.line() == "clean: 900.0 MB of 2.7 GB (33%), 15.0 MB/s, 2:00 left (1:00 so far)"
    assert duration(3909) == "1:05:09"


def test_quiet_when_not_a_terminal_unless_asked(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    clock, log = Clock(), io.StringIO()
    progress = Progress("tokenize", total=10, unit="pairs", stream=log, clock=clock)
    for _ in range(10):
        clock.now += 5
        progress.advance(1)
    progress.close()
    assert log.getvalue() == ""
    monkeypatch.setenv(PROGRESS_ENV, "20")
    progress = Progress("tokenize", total=10, unit="pairs", stream=log, clock=clock)
    for _ in range(10):
        clock.now += 5
        progress.advance(1)
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("tokenize: 4 pairs of 10 pairs (40%), 0.2 pairs/s, 0:30 left")


def test_in_place_on_a_terminal(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    clock, terminal = Clock(), Terminal()
    progress = Progress("download", stream=terminal, clock=clock)
    clock.now += 1
    progress.advance(2048)
    progress.close()
    assert terminal.getvalue().startswith("\rdownload: 2.0 kB, 2.0 kB/s") and terminal.getvalue().endswith("\n")


def test_a_bad_setting_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "often")
    with pytest.raises(Seq2SeqError, match=r"\$SEQ2SEQ_PROGRESS='often': not a number of seconds"):
        Progress("clean", stream=io.StringIO())
