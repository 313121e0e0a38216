"""Reading what one stage wrote for the next: a file that is missing, cut short, not UTF-8 or
changed by hand is a one-line error that names it and says how to get it back (DVC remakes it).

The stages write these files atomically, so a damaged one comes from outside the pipeline: a
hand edit, a copy that stopped half-way, a disk that filled up under another program.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import Seq2SeqError

REMAKE = "it is a pipeline output: remake it with dvc repro (dvc repro -f -s STAGE if DVC sees no change)"


def read_output_bytes(path: str | Path) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise Seq2SeqError(f"{path}: missing; {REMAKE}") from None
    except IsADirectoryError:
        raise Seq2SeqError(f"{path}: a folder, not a file; {REMAKE}") from None


def output_file(path: str | Path) -> Path:
    """``path``, a stage's output to be read in pieces, once it is known to be a file."""
    path = Path(path)
    if path.is_dir():
        raise Seq2SeqError(f"{path}: a folder, not a file; {REMAKE}")
    if not path.exists():
        raise Seq2SeqError(f"{path}: missing; {REMAKE}")
    return path


def read_output_lines(path: str | Path) -> list[str]:
    """The lines of a text output (without their line ends)."""
    raw = read_output_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise Seq2SeqError(f"{path}:{line}: invalid UTF-8; {REMAKE}") from None
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def read_output_json(path: str | Path) -> Any:
    raw = read_output_bytes(path)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise Seq2SeqError(f"{path}: not valid JSON ({str(err)[:60]}); {REMAKE}") from None
