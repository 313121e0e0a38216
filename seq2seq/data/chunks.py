"""A big text file a chunk of lines at a time: memory bounded by the chunk, whatever the file's size.

Lines are numbered from 1 as an editor numbers them, so an error found in any chunk names the
file and line (:mod:`.lines`); a byte-order mark is dropped, CRLF is left for
:func:`~.lines.decode_line`, and a file with no text in it is refused as the whole-file readers refuse it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ..core.errors import DataError
from ..core.progress import Progress

BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 1 << 23  # 8 MiB: about 60,000 sentence pairs


def line_chunks(path: str | Path, key: str = "data.path", what: str = "sentence pair", remedy: str = "",
                chunk_bytes: int = CHUNK_BYTES, progress: str | None = None,
                name: str | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the chunk's first line, its lines without their ``\\n``) for each chunk of whole lines
    of ``path``; ``progress``: a label to show progress under (:class:`~seq2seq.core.progress.Progress`).
    A file holding only whitespace is a :class:`DataError` naming it (``name``: as the user knows it,
    by default ``path``; ``remedy``: what to do, by default point ``key`` at the right file), raised
    once the file has been read."""
    path = Path(path)
    shown = Progress(progress, total=os.path.getsize(path)) if progress else None
    number, rest, first, text_seen = 1, b"", True, False
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk_bytes):
                if shown:
                    shown.advance(len(block))
                block, rest = rest + block, b""
                if first:
                    if len(block) < len(BOM) and BOM.startswith(block):
                        rest = block  # maybe a byte-order mark cut by the read: wait for more
                        continue
                    block, first = block.removeprefix(BOM), False
                cut = block.rfind(b"\n")
                if cut < 0:
                    rest = block
                    continue
                whole, rest = block[:cut], block[cut + 1:]
                text_seen = text_seen or bool(whole.strip())
                lines = whole.split(b"\n")
                yield number, lines
                number += len(lines)
        if rest:
            text_seen = text_seen or bool(rest.strip())
            yield number, [rest]
    finally:
        if shown:
            shown.close()
    if not text_seen:
        raise DataError(f"{name or path}: empty (no {what} in it); {remedy or f'point {key} at the right file'}")
