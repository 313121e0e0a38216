import random
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.core.errors import DataError, Seq2SeqError
from seq2seq.data.chunks import line_chunks
from seq2seq.data.clean import SPLITS, clean_corpus, drop_rule, group_key, normalize_text, read_corpus, read_split
from seq2seq.params.config import CleanConfig
from tests.conftest import synthetic_pairs
from tests.whole_file_clean import whole_file_clean


def cleaned(folder: Path, pairs, config: CleanConfig, chunk_bytes: int = 1 << 23, official_valid=None):
    """Each split's (source, target, attribution) rows and the report of cleaning ``pairs`` (tuples of
    2 or 3 strings, or whole lines) written as a TSV in ``folder``."""
    corpus = folder / "corpus.tsv"
    corpus.write_text("".join(p if isinstance(p, str) else "\t".join(p) + "\n" for p in pairs), encoding="utf-8")
    report = clean_corpus(corpus, folder / "clean", config, official_valid, chunk_bytes=chunk_bytes)
    splits = {name: list(read_split(folder / "clean" / f"{name}.tsv").itertuples(index=False, name=None))
              if (folder / "clean" / f"{name}.tsv").stat().st_size else [] for name in SPLITS}
    return splits, report


def test_normalize_text():
    assert normalize_text("  Cafe\u0301 \t con\u00a0 leche\x07 ") == "Café con leche"
    assert normalize_text("\u3000") == ""


@pytest.mark.parametrize(
    "data, message",
    [
        (b"ok\tbien\nonly one column\n", r":2: expected 2 or 3 TAB-separated columns"),
        (b"a\tb\tc\td\n", r":1: expected 2 or 3 .* found 4"),
        (b"ok\tbien\nbad \xff\tx\n", r":2: invalid UTF-8 at byte 4"),
        (b"a\x00\tb\n", r":1: contains a NUL byte"),
        (b"", r"empty \(no sentence pair in it\)"),
    ],
)
def test_corpus_errors_name_file_and_line(tmp_path, data, message):
    path = tmp_path / "c.tsv"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as info:
        read_corpus(path)
    assert str(path) in str(info.value)


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"\xef\xbb\xbfHi.\tHola.\r\nBye.\tAdi\xc3\xb3s.\tCC-BY\r\n")
    frame = read_corpus(path)
    assert list(frame["source"]) == ["Hi.", "Bye."]
    assert list(frame["target"]) == ["Hola.", "Adiós."]
    assert list(frame["attribution"]) == ["", "CC-BY"]


def test_each_rule_is_counted(tmp_path):
    pairs = [
        ("Hello there.", "Hola."),
        ("Hello there.", "Hola."),  # duplicate
        ("", "Vacío."),  # empty
        ("one " * 60, "uno"),  # too long
        ("A very long English sentence indeed.", "Sí."),  # length ratio
    ] + synthetic_pairs(4)
    splits, report = cleaned(tmp_path, pairs, CleanConfig(max_words=50, valid_size=1, test_size=1))
    assert (report.dropped_empty, report.dropped_too_long, report.dropped_length_ratio,
            report.dropped_duplicate) == (1, 1, 1, 1)
    assert sorted(src for rows in splits.values() for src, _, _ in rows) == sorted(
        ["Hello there."] + [src for src, _ in synthetic_pairs(4)])


def test_split_keeps_translations_of_a_source_together_and_is_order_independent(tmp_path, tiny_pairs):
    pairs = tiny_pairs + [(src, tgt + " (otra)") for src, tgt in tiny_pairs[:100]] + [
        (src.upper(), tgt) for src, tgt in tiny_pairs[100:150]
    ]
    cfg = CleanConfig(valid_size=40, test_size=40)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    splits, report = cleaned(tmp_path / "a", pairs, cfg)
    keys = {name: {group_key(src) for src, _, _ in rows} for name, rows in splits.items()}
    assert not keys["train"] & keys["valid"] and not keys["train"] & keys["test"] and not keys["valid"] & keys["test"]
    assert sum(len(p) for p in splits.values()) == len(pairs) == report.input_pairs
    assert len(splits["test"]) >= 40 and len(splits["valid"]) >= 40
    shuffled, _ = cleaned(tmp_path / "b", list(reversed(pairs)), cfg)
    for name in splits:
        assert sorted(splits[name]) == sorted(shuffled[name])


def test_too_small_corpus_is_a_clear_error(tmp_path, tiny_pairs):
    with pytest.raises(DataError, match="only 400 pairs are left .* lower those sizes"):
        cleaned(tmp_path, tiny_pairs, CleanConfig(valid_size=300, test_size=300))
    assert not (tmp_path / "clean").exists()


def test_clean_corpus_writes_splits_and_report(tmp_path, tiny_tsv):
    report = clean_corpus(tiny_tsv, tmp_path / "clean", CleanConfig(valid_size=30, test_size=30))
    assert report.input_pairs == 400
    assert report.train + report.valid + report.test == 400
    for name in ("train", "valid", "test"):
        assert len(read_split(tmp_path / "clean" / f"{name}.tsv")) == getattr(report, name)


def test_corpus_cleaned_to_nothing(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text(" \tx\ny\t \n", encoding="utf-8")
    with pytest.raises(DataError, match="every pair was removed"):
        clean_corpus(path, tmp_path / "clean", CleanConfig(valid_size=1, test_size=1))
    assert not (tmp_path / "clean").exists()


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(text, text), min_size=1, max_size=30))
def test_cleaning_clean_data_changes_nothing(pairs):
    def one_field(text: str) -> str:  # what a TSV field can hold
        return re.sub(r"[\n\r\t\x00]", " ", text)

    pairs = [(one_field(a), one_field(b)) for a, b in pairs]
    if all(drop_rule(normalize_text(a), normalize_text(b), CleanConfig()) for a, b in pairs):
        return  # cleaned to nothing: refused (test_corpus_cleaned_to_nothing)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "valid.tsv").write_text("Hi.\tHola.\n", encoding="utf-8")
        (folder / "once").mkdir()
        (folder / "twice").mkdir()
        once, _ = cleaned(folder / "once", pairs, CleanConfig(), official_valid=folder / "valid.tsv")
        twice, report = cleaned(folder / "twice", once["train"], CleanConfig(), official_valid=folder / "valid.tsv")
    assert twice["train"] == once["train"]
    assert report.dropped_empty + report.dropped_too_long + report.dropped_length_ratio + report.dropped_duplicate == 0


words = st.sampled_from(["the cat", "The Cat", "a dog", "el perro", "el gato", "Hola", "hola", "sí", "¿qué?", "x"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(words, words), min_size=5, max_size=60), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 10_000))
def test_no_source_group_crosses_splits(pairs, valid_size, test_size, seed):
    cfg = CleanConfig(valid_size=valid_size, test_size=test_size, seed=seed, min_ratio_chars=1000)
    distinct = len(set(pairs))
    with tempfile.TemporaryDirectory() as folder:
        try:
            splits, _ = cleaned(Path(folder), pairs, cfg, chunk_bytes=64)
        except DataError as err:  # too few pairs, or every group went to valid/test: refused, not silently empty
            assert ("no training pairs" in str(err)) or (distinct < valid_size + test_size + 1)
            return
    seen: dict[str, str] = {}
    for name, rows in splits.items():
        for source, _, _ in rows:
            key = group_key(source)
            assert seen.setdefault(key, name) == name, f"{key!r} is in {seen[key]} and {name}"
    assert sum(len(p) for p in splits.values()) == distinct
    assert len(splits["test"]) >= test_size and len(splits["valid"]) >= valid_size


def test_extremely_long_lines_are_read_and_filtered(tmp_path):
    path = tmp_path / "c.tsv"
    long_text = "palabra " * 200_000  # ~1.6 MB on one line
    path.write_text(f"Hi.\tHola.\n{long_text}\tok\nBye.\tAdiós.\n", encoding="utf-8")
    frame = read_corpus(path)
    assert len(frame) == 3
    report = clean_corpus(path, tmp_path / "clean", CleanConfig(), official_valid=path, chunk_bytes=4096)
    assert report.train == 2 and report.dropped_too_long == 1


def corpus_over_many_chunks() -> list:
    """Pairs whose duplicates and whose other translations of one source lie far apart (in other
    chunks of a small chunk size), with pairs for every drop rule and blank lines among them."""
    rng = random.Random(3)
    base = synthetic_pairs(600, seed=1)
    lines: list = list(base)
    lines += [(src, tgt) for src, tgt in rng.sample(base, 80)]  # exact duplicates, far from the first
    lines += [(src.upper(), tgt + " (otra)") for src, tgt in rng.sample(base, 60)]  # same group, another pair
    (src, tgt), (src2, tgt2) = base[5], base[9]
    lines += [(f"  {src} ", f"{tgt}\u00a0"), (src2, tgt2, "CC-BY (Tom)")]  # duplicates once normalised
    lines += [("", "Vacío."), ("one " * 60, "uno"), ("A very long English sentence indeed.", "Sí."), "\n", "  \n"]
    rng.shuffle(lines)
    return lines


@pytest.mark.parametrize("chunk_bytes", [1, 97, 4096, 1 << 23])
def test_chunked_cleaning_gives_the_pairs_of_the_whole_file_version(tmp_path, chunk_bytes):
    cfg = CleanConfig(valid_size=50, test_size=70, seed=7)
    splits, report = cleaned(tmp_path, corpus_over_many_chunks(), cfg, chunk_bytes=chunk_bytes)
    reference, counts = whole_file_clean(tmp_path / "corpus.tsv", cfg)
    for name in SPLITS:  # the same pairs, in the same order, in each split
        assert splits[name] == list(reference[name].itertuples(index=False, name=None)), name
    assert {k: getattr(report, k) for k in counts} == counts
    assert counts["dropped_duplicate"] >= 80 and report.input_pairs == 600 + 80 + 60 + 2 + 3


def test_a_bad_line_past_the_first_chunk_is_named_by_its_file_and_line(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    good = "".join(f"{a}\t{b}\n" for a, b in synthetic_pairs(500)).encode()
    corpus.write_bytes(good + b"bad \xff\tx\n" + good[:200] + b"only one column\n")
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "train.tsv").write_text("earlier\tanterior\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{corpus}:501: invalid UTF-8 at byte 4"):
        clean_corpus(corpus, tmp_path / "clean", CleanConfig(valid_size=5, test_size=5), chunk_bytes=1000)
    assert (tmp_path / "clean" / "train.tsv").read_text(encoding="utf-8") == "earlier\tanterior\n"  # untouched
    assert not list(tmp_path.glob(".clean.*"))


def test_a_missing_corpus_says_to_remake_it(tmp_path):
    with pytest.raises(Seq2SeqError, match="corpus.tsv: missing; it is a pipeline output"):
        clean_corpus(tmp_path / "corpus.tsv", tmp_path / "clean", CleanConfig())


@pytest.mark.parametrize("chunk_bytes", [1, 2, 5, 1 << 20])
def test_line_chunks_number_lines_and_drop_a_byte_order_mark(tmp_path, chunk_bytes):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"\xef\xbb\xbfHi.\tHola.\r\n\nBye.\tAdi\xc3\xb3s.")
    got = [(number + i, line) for number, lines in line_chunks(path, chunk_bytes=chunk_bytes)
           for i, line in enumerate(lines)]
    assert got == [(1, b"Hi.\tHola.\r"), (2, b""), (3, b"Bye.\tAdi\xc3\xb3s.")]
    path.write_bytes(b" \n\n  ")
    with pytest.raises(DataError, match=r"c.tsv: empty \(no sentence pair in it\); point data.path"):
        list(line_chunks(path, chunk_bytes=chunk_bytes))
