"""Cleaning and splitting the parallel corpus (pandas).

Rules, in order, each counted in the report:

1. parse: ``source<TAB>target[<TAB>attribution]`` lines, strict UTF-8 (errors name the line);
2. normalise: Unicode NFC, control characters made spaces, whitespace collapsed;
3. ``empty``: either side empty;
4. ``too_long``: either side over ``max_words`` words;
5. ``length_ratio``: one side over ``max_length_ratio`` times the other's characters;
6. ``duplicate``: the same (source, target) pair seen before.

The split is deterministic and leak-free: pairs are grouped by a normalised key of
their source sentence (case and punctuation folded), groups are ordered by a seeded
hash, and whole groups are dealt to test, then valid, then train. All translations
of one source sentence therefore land in the same split, whatever the input order.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.atomic import atomic_path
from ..core.errors import DataError
from ..core.stage_outputs import REMAKE, read_output_bytes
from ..params.config import CleanConfig
from .lines import decode_line, numbered_lines, split_pair

SPLITS = ("train", "valid", "test")
COLUMNS = ["source", "target", "attribution"]
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class CleanReport:
    input_pairs: int
    dropped_empty: int
    dropped_too_long: int
    dropped_length_ratio: int
    dropped_duplicate: int
    train: int
    valid: int
    test: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def normalize_text(text: str) -> str:
    """NFC, control characters (Unicode Cc) made spaces, any run of whitespace one space, stripped."""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    return _SPACE.sub(" ", text).strip()


def group_key(source: str) -> str:
    """The key that decides a pair's split: case-folded words only, so 'Go.' and 'go!' stay together."""
    return _NOT_WORD.sub(" ", source.casefold()).strip()


def read_corpus(path: str | Path) -> pd.DataFrame:
    """Parse a corpus TSV that an earlier stage wrote (data/raw/, data/clean/, data/tests/) into a
    frame with columns source, target, attribution.

    Raises :class:`DataError` naming the file and line for invalid UTF-8, NUL bytes or a wrong
    number of columns, and saying to remake it (a pipeline output). A byte-order mark and CRLF
    line ends are accepted.
    """
    path = Path(path)
    return parse_corpus(read_output_bytes(path), str(path), remedy=REMAKE)


def parse_corpus(raw: bytes, path: str, key: str = "data.path", remedy: str = "") -> pd.DataFrame:
    """:func:`read_corpus` of bytes; ``path`` names them in errors, ``key`` the param that gave them
    (or ``remedy`` says what to do about an empty file)."""
    rows: list[tuple[str, str, str]] = []
    for number, line in numbered_lines(raw, path, key, "sentence pair", remedy):
        if not line.strip():
            continue
        parts = split_pair(decode_line(line, path, number), path, number)
        rows.append((parts[0], parts[1], parts[2] if len(parts) == 3 else ""))
    return pd.DataFrame(rows, columns=COLUMNS)


def clean_pairs(frame: pd.DataFrame, config: CleanConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """Normalise and filter; return the kept pairs (in input order) and the drop counts."""
    frame = frame.copy()
    frame["source"] = frame["source"].map(normalize_text)
    frame["target"] = frame["target"].map(normalize_text)
    counts: dict[str, int] = {}

    empty = (frame["source"] == "") | (frame["target"] == "")
    counts["dropped_empty"] = int(empty.sum())
    frame = frame[~empty]

    words_src = frame["source"].str.count(" ") + 1
    words_tgt = frame["target"].str.count(" ") + 1
    too_long = (words_src > config.max_words) | (words_tgt > config.max_words)
    counts["dropped_too_long"] = int(too_long.sum())
    frame = frame[~too_long]

    len_src = frame["source"].str.len()
    len_tgt = frame["target"].str.len()
    longer = pd.concat([len_src, len_tgt], axis=1).max(axis=1)
    shorter = pd.concat([len_src, len_tgt], axis=1).min(axis=1)
    bad_ratio = (longer >= config.min_ratio_chars) & (longer > config.max_length_ratio * shorter)
    counts["dropped_length_ratio"] = int(bad_ratio.sum())
    frame = frame[~bad_ratio]

    dup = frame.duplicated(subset=["source", "target"], keep="first")
    counts["dropped_duplicate"] = int(dup.sum())
    frame = frame[~dup]
    return frame.reset_index(drop=True), counts


def split_pairs(frame: pd.DataFrame, config: CleanConfig) -> dict[str, pd.DataFrame]:
    """Deal whole source groups to test, valid, then train, in seeded-hash order."""
    keys = frame["source"].map(group_key)
    seed = str(config.seed).encode()
    order = keys.map(lambda k: hashlib.sha256(seed + b"\0" + k.encode("utf-8")).hexdigest())
    sizes = frame.groupby(order, sort=True).size()  # groups in hash order, with their pair counts
    needed = config.test_size + config.valid_size
    if len(frame) < needed + 1:
        raise DataError(
            f"only {len(frame)} pairs are left after cleaning, but clean.test_size + clean.valid_size = {needed} "
            "and train needs at least one; lower those sizes or use a bigger corpus"
        )
    # Test takes groups until it has test_size pairs, then valid until valid_size, train the rest.
    test_groups: list[str] = []
    valid_groups: list[str] = []
    test_count = valid_count = 0
    for group, count in sizes.items():
        if test_count < config.test_size:
            test_groups.append(group)
            test_count += int(count)
        elif valid_count < config.valid_size:
            valid_groups.append(group)
            valid_count += int(count)
        else:
            break
    assignment = pd.Series("train", index=frame.index)
    assignment[order.isin(set(test_groups))] = "test"
    assignment[order.isin(set(valid_groups))] = "valid"
    splits = {name: frame[assignment == name].reset_index(drop=True) for name in SPLITS}
    if splits["train"].empty:
        raise DataError("cleaning left no training pairs after the valid and test splits; lower clean.*_size")
    return splits


def write_split(frame: pd.DataFrame, path: str | Path) -> None:
    """Write one split as a TSV (no header, no quoting) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for src, tgt, attribution in frame[COLUMNS].itertuples(index=False):
                fh.write(f"{src}\t{tgt}\t{attribution}\n" if attribution else f"{src}\t{tgt}\n")


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a split written by :func:`write_split`."""
    return read_corpus(path)


def normalize_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """An official validation or test set: normalised like the corpus, never filtered,
    deduplicated or subsampled, so that scores cover the whole set."""
    frame = frame.copy()
    frame["source"] = frame["source"].map(normalize_text)
    frame["target"] = frame["target"].map(normalize_text)
    return frame.reset_index(drop=True)


def clean_corpus(corpus: str | Path, out_dir: str | Path, config: CleanConfig,
                 official_valid: str | Path | None = None) -> CleanReport:
    """The clean stage: read, clean, split and write ``{train,valid,test}.tsv``.

    With ``official_valid`` (the corpus brings its own validation set) every cleaned pair
    is for training, the official pairs are the valid split (normalised only), and the
    test split is empty: such corpora name their test sets in ``tests``.
    """
    frame = read_corpus(corpus)
    kept, counts = clean_pairs(frame, config)
    if kept.empty:
        raise DataError(f"{corpus}: every pair was removed by cleaning ({counts}); loosen clean.* in params.yaml")
    if official_valid is None:
        splits = split_pairs(kept, config)
    else:
        splits = {"train": kept, "valid": normalize_pairs(read_corpus(official_valid)), "test": kept.iloc[:0]}
    for name, part in splits.items():
        write_split(part, Path(out_dir) / f"{name}.tsv")
    return CleanReport(input_pairs=len(frame), **counts, **{n: len(p) for n, p in splits.items()})
