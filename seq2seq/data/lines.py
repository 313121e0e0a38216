"""A user's text file, line by line: invalid UTF-8, a NUL byte, or a TSV line without exactly one
TAB between source and target (and an optional attribution) is a one-line :class:`DataError`
that names the file (or the flag or key that gave it) and the line. No pandas and no torch here:
the torch-free runtime reads its input with it too."""
from __future__ import annotations

from typing import Iterator

from ..core.errors import DataError


def decode_line(line: bytes, where: str, number: int) -> str:
    """Line ``number`` (from 1) of ``where`` as text, without its line end."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    nul = line.find(b"\0")
    if nul >= 0:
        raise DataError(f"{where}:{number}: contains a NUL byte at byte {nul} of the line; is it a text file? "
                        "remove the NUL bytes")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}:{number}: invalid UTF-8 at byte {err.start} of the line; re-encode the file as "
                        "UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)") from None


def split_pair(text: str, where: str, number: int) -> list[str]:
    """A TSV line's columns: source, target[, attribution]."""
    parts = text.split("\t")
    if len(parts) not in (2, 3):
        raise DataError(
            f"{where}:{number}: expected 2 or 3 TAB-separated columns (source, target[, attribution]), "
            f"found {len(parts)}; put one TAB between the source and the target (sentences that hold a TAB "
            "belong in two line-aligned files: path for the source side, target_path for the target side)")
    return parts


def numbered_lines(raw: bytes, where: str, key: str, what: str = "sentence",
                   remedy: str = "") -> Iterator[tuple[int, bytes]]:
    """(number from 1, bytes) of each line of a file that must not be empty (a BOM is dropped);
    ``remedy``: what to do about an empty one (default: point ``key`` at the right file)."""
    if not raw.strip():
        raise DataError(f"{where}: empty (no {what} in it); {remedy or f'point {key} at the right file'}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return enumerate(raw.split(b"\n"), start=1)


def check_text(raw: bytes, where: str, key: str, tsv: bool) -> None:
    """Refuse a file that is empty or whose lines are not UTF-8 text (``tsv``: sentence pairs)."""
    for number, line in numbered_lines(raw, where, key, "sentence pair" if tsv else "sentence"):
        text = decode_line(line, where, number)
        if tsv and text.strip():
            split_pair(text, where, number)
