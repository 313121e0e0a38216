"""Atomic writes: a reader sees the old file or the complete new one, never half of one.

Everything a stage writes goes through these helpers: the data goes to a temporary
name in the same folder, is flushed to disk, then renamed over the final name.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def remove_leftovers(path: Path) -> None:
    """Delete what a killed earlier write of ``path`` left beside it (``.NAME.*.tmp`` / ``.old``)."""
    for pattern in (f".{path.name}.*.tmp", f".{path.name}.*.old"):
        for stale in path.parent.glob(pattern):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


@contextlib.contextmanager
def _named_as(target: Path, temporary: Path | None = None) -> Iterator[None]:
    """Errors about the temporary entry (or a failed write, which names no file) name ``target``,
    the output the user knows, not a hidden temporary name."""
    try:
        yield
    except OSError as err:
        about_temporary = (err.filename is None and err.errno in WRITE_ERRNOS) or (
            err.filename is not None and (temporary is None or str(err.filename).startswith(str(temporary))))
        if not about_temporary:
            raise
        raise OSError(err.errno, err.strerror, str(target)) from err


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is untouched; what a
    kill -9 left from an earlier write is removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    with _named_as(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    _public(tmp_path, 0o666)
    try:
        with _named_as(path, tmp_path):
            yield tmp_path
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public(path: Path, mode: int) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; give them the usual umask permissions."""
    os.chmod(path, mode & ~_umask())


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it replaces ``path``.

    The old folder (if any) is moved aside and deleted only after the new one is in
    place, so an interruption leaves either the old folder or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    with _named_as(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    _public(tmp, 0o777)
    try:
        with _named_as(path, tmp):
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / path.name)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
