import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.core.errors import DataError
from seq2seq.data.clean import (
    clean_corpus,
    clean_pairs,
    group_key,
    normalize_text,
    read_corpus,
    read_split,
    split_pairs,
)
from seq2seq.params.config import CleanConfig


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


def test_each_rule_is_counted():
    frame = pd.DataFrame(
        [
            ("Hello there.", "Hola."),
            ("Hello there.", "Hola."),  # duplicate
            ("", "Vacío."),  # empty
            ("one " * 60, "uno"),  # too long
            ("A very long English sentence indeed.", "Sí."),  # length ratio
        ],
        columns=["source", "target"],
    ).assign(attribution="")
    kept, counts = clean_pairs(frame, CleanConfig(max_words=50))
    assert counts == {"dropped_empty": 1, "dropped_too_long": 1, "dropped_length_ratio": 1, "dropped_duplicate": 1}
    assert list(kept["source"]) == ["Hello there."]


def _frame(pairs):
    return pd.DataFrame(pairs, columns=["source", "target"]).assign(attribution="")


def test_split_keeps_translations_of_a_source_together_and_is_order_independent(tiny_pairs):
    pairs = tiny_pairs + [(src, tgt + " (otra)") for src, tgt in tiny_pairs[:100]] + [
        (src.upper(), tgt) for src, tgt in tiny_pairs[100:150]
    ]
    cfg = CleanConfig(valid_size=40, test_size=40)
    splits = split_pairs(_frame(pairs), cfg)
    keys = {name: set(part["source"].map(group_key)) for name, part in splits.items()}
    assert not keys["train"] & keys["valid"] and not keys["train"] & keys["test"] and not keys["valid"] & keys["test"]
    assert sum(len(p) for p in splits.values()) == len(pairs)
    assert len(splits["test"]) >= 40 and len(splits["valid"]) >= 40
    shuffled = split_pairs(_frame(list(reversed(pairs))), cfg)
    for name in splits:
        assert sorted(splits[name]["target"]) == sorted(shuffled[name]["target"])


def test_too_small_corpus_is_a_clear_error(tiny_pairs):
    with pytest.raises(DataError, match="only 400 pairs are left .* lower those sizes"):
        split_pairs(_frame(tiny_pairs), CleanConfig(valid_size=300, test_size=300))


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
    cfg = CleanConfig()
    once, _ = clean_pairs(_frame(pairs), cfg)
    twice, counts = clean_pairs(once, cfg)
    assert once.equals(twice)
    assert sum(counts.values()) == 0


words = st.sampled_from(["the cat", "The Cat", "a dog", "el perro", "el gato", "Hola", "hola", "sí", "¿qué?", "x"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(words, words), min_size=5, max_size=60), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 10_000))
def test_no_source_group_crosses_splits(pairs, valid_size, test_size, seed):
    frame = _frame(pairs)
    cfg = CleanConfig(valid_size=valid_size, test_size=test_size, seed=seed)
    if len(frame) < valid_size + test_size + 1:
        return
    try:
        splits = split_pairs(frame, cfg)
    except DataError as err:  # every group went to valid/test: refused, not silently empty
        assert "no training pairs" in str(err)
        return
    seen: dict[str, str] = {}
    for name, part in splits.items():
        for key in part["source"].map(group_key):
            assert seen.setdefault(key, name) == name, f"{key!r} is in {seen[key]} and {name}"
    assert sum(len(p) for p in splits.values()) == len(frame)
    assert len(splits["test"]) >= test_size and len(splits["valid"]) >= valid_size


def test_extremely_long_lines_are_read_and_filtered(tmp_path):
    path = tmp_path / "c.tsv"
    long_text = "palabra " * 200_000  # ~1.6 MB on one line
    path.write_text(f"Hi.\tHola.\n{long_text}\tok\nBye.\tAdiós.\n", encoding="utf-8")
    frame = read_corpus(path)
    assert len(frame) == 3
    kept, counts = clean_pairs(frame, CleanConfig())
    assert len(kept) == 2 and counts["dropped_too_long"] == 1
