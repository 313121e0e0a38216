"""Cleaning and splitting the parallel corpus, a chunk at a time: memory grows by two hashes per
pair (32 bytes), not by the text, so corpora of tens of millions of pairs clean on a laptop.

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
Each split keeps the corpus's order.
"""
from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from ..core.atomic import atomic_dir, atomic_path
from ..core.errors import DataError
from ..core.stage_outputs import REMAKE, output_file, read_output_bytes
from ..params.config import CleanConfig
from .chunks import CHUNK_BYTES, line_chunks
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


def drop_rule(source: str, target: str, config: CleanConfig) -> str | None:
    """The report's name of the first rule (3 to 5 above) that drops this normalised pair, or None."""
    if not source or not target:
        return "dropped_empty"
    if source.count(" ") >= config.max_words or target.count(" ") >= config.max_words:
        return "dropped_too_long"
    longer, shorter = max(len(source), len(target)), min(len(source), len(target))
    if longer >= config.min_ratio_chars and longer > config.max_length_ratio * shorter:
        return "dropped_length_ratio"
    return None


DROP_RULES = ("dropped_empty", "dropped_too_long", "dropped_length_ratio")
TRAIN, VALID, TEST, DUPLICATE = 0, 1, 2, -1  # where each kept pair goes (:meth:`Cleaner.assignment`)


class Cleaner:
    """Rules 2 to 6 and the split, over a corpus fed in chunks: memory per pair is two 16-byte hashes,
    never the text.

    :meth:`add` normalises and filters a chunk and returns the kept pairs' lines; :meth:`assignment`
    then says, for every line returned so far, which split it goes to or that it repeats an earlier
    pair (rule 6: the same normalised source and target, by a 128-bit hash of both). Groups are
    ordered by the first 128 bits of the seeded SHA-256 of their key, which orders them as the full
    hash does (a tie needs a 128-bit collision)."""

    def __init__(self, config: CleanConfig) -> None:
        self.config = config
        self.counts = dict.fromkeys(DROP_RULES, 0)
        self.input_pairs = 0
        self._seed = str(config.seed).encode() + b"\0"
        self._pair_hashes: list[np.ndarray] = []
        self._group_hashes: list[np.ndarray] = []

    @property
    def kept(self) -> int:
        """Pairs kept by rules 3 to 5 so far (duplicates included)."""
        return sum(len(h) for h in self._pair_hashes)

    def add(self, pairs: Iterable[tuple[str, str, str]]) -> list[str]:
        """Normalise and filter ``(source, target, attribution)`` pairs; the kept ones as split lines."""
        lines: list[str] = []
        pair_digests: list[bytes] = []
        group_digests: list[bytes] = []
        for source, target, attribution in pairs:
            self.input_pairs += 1
            source, target = normalize_text(source), normalize_text(target)
            rule = drop_rule(source, target, self.config)
            if rule:
                self.counts[rule] += 1
                continue
            pair = f"{source}\t{target}"
            lines.append(f"{pair}\t{attribution}\n" if attribution else pair + "\n")
            pair_digests.append(hashlib.blake2b(pair.encode("utf-8"), digest_size=16).digest())
            group_digests.append(hashlib.sha256(self._seed + group_key(source).encode("utf-8")).digest()[:16])
        self._pair_hashes.append(_as_keys(pair_digests))
        self._group_hashes.append(_as_keys(group_digests))
        return lines

    def assignment(self, split: bool = True) -> np.ndarray:
        """For each kept line in order: TRAIN, VALID, TEST or DUPLICATE (``split`` False: no valid or
        test split, all training). Counts the duplicates into :attr:`counts`."""
        pairs = np.concatenate(self._pair_hashes) if self._pair_hashes else np.zeros((0, 2), np.uint64)
        first = first_occurrences(pairs)
        del pairs
        self.counts["dropped_duplicate"] = int(len(first) - first.sum())
        where = np.full(len(first), DUPLICATE, dtype=np.int8)
        if not split:
            where[first] = TRAIN
            return where
        groups = np.concatenate(self._group_hashes)[first]
        where[first] = deal_groups(groups, self.config)
        return where


def _as_keys(digests: list[bytes]) -> np.ndarray:
    """16-byte digests as rows of two uint64 that sort as the bytes do."""
    return np.frombuffer(b"".join(digests), dtype=">u8").reshape(-1, 2).astype(np.uint64)


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``keys`` (two uint64 columns) in sorted order, and where each run of equal keys starts."""
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], (ordered[1:] != ordered[:-1]).any(axis=1)]))
    return order, starts


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """True at the first row of each distinct key (two uint64 columns), False at its repeats."""
    first = np.zeros(len(keys), dtype=bool)
    if len(keys):
        order, starts = _runs(keys)
        first[np.minimum.reduceat(order, starts)] = True
    return first


def deal_groups(groups: np.ndarray, config: CleanConfig) -> np.ndarray:
    """TEST, VALID or TRAIN for each pair of group hash ``groups[i]``: whole groups in hash order go to
    test until it holds ``test_size`` pairs, then to valid until ``valid_size``, the rest to train."""
    needed = config.test_size + config.valid_size
    if len(groups) < needed + 1:
        raise DataError(
            f"only {len(groups)} pairs are left after cleaning, but clean.test_size + clean.valid_size = {needed} "
            "and train needs at least one; lower those sizes or use a bigger corpus"
        )
    order, starts = _runs(groups)
    ends = np.append(starts[1:], len(groups))
    test_end = valid_end = 0
    for start, end in zip(starts, ends):  # stops after the groups of test and valid
        if test_end < config.test_size:
            test_end = valid_end = int(end)
        elif valid_end - test_end < config.valid_size:
            valid_end = int(end)
        else:
            break
    where = np.full(len(groups), TRAIN, dtype=np.int8)
    where[order[:test_end]] = TEST
    where[order[test_end:valid_end]] = VALID
    if valid_end == len(groups):
        raise DataError("cleaning left no training pairs after the valid and test splits; lower clean.*_size")
    return where


def parsed_pairs(first: int, lines: list[bytes], where: str) -> Iterator[tuple[str, str, str]]:
    """(source, target, attribution) of each non-blank line of a chunk whose first line is ``first``."""
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        parts = split_pair(decode_line(line, where, number), where, number)
        yield parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def write_split(frame: pd.DataFrame, path: str | Path) -> None:
    """Write one split as a TSV (no header, no quoting) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for src, tgt, attribution in frame[COLUMNS].itertuples(index=False):
                fh.write(f"{src}\t{tgt}\t{attribution}\n" if attribution else f"{src}\t{tgt}\n")


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a split written by :func:`write_split`."""
    return read_corpus(path)


def split_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES,
                 progress: str | None = None) -> Iterator[tuple[list[str], list[str]]]:
    """(sources, targets) of each chunk of a split :func:`clean_corpus` wrote."""
    path = output_file(path)
    for first, lines in line_chunks(path, remedy=REMAKE, chunk_bytes=chunk_bytes, progress=progress):
        pairs = list(parsed_pairs(first, lines, str(path)))
        yield [p[0] for p in pairs], [p[1] for p in pairs]


def split_head(path: str | Path, pairs: int) -> tuple[pd.DataFrame, int]:
    """The first ``pairs`` pairs of a split (a frame, as :func:`read_split`) and how many it holds in
    all, read a chunk at a time."""
    path = output_file(path)
    rows: list[tuple[str, str, str]] = []
    count = 0
    for first, lines in line_chunks(path, remedy=REMAKE):
        if len(rows) < pairs:
            rows += itertools.islice(parsed_pairs(first, lines, str(path)), pairs - len(rows))
        count += sum(1 for line in lines if line.strip())
    return pd.DataFrame(rows, columns=COLUMNS), count


def normalize_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """An official validation or test set: normalised like the corpus, never filtered,
    deduplicated or subsampled, so that scores cover the whole set."""
    frame = frame.copy()
    frame["source"] = frame["source"].map(normalize_text)
    frame["target"] = frame["target"].map(normalize_text)
    return frame.reset_index(drop=True)


def clean_corpus(corpus: str | Path, out_dir: str | Path, config: CleanConfig,
                 official_valid: str | Path | None = None, chunk_bytes: int = CHUNK_BYTES) -> CleanReport:
    """The clean stage: read, clean, split and write ``{train,valid,test}.tsv`` in ``out_dir`` (replaced
    whole, or left as it was on an error), a chunk of ``chunk_bytes`` at a time.

    Two passes: the first cleans each chunk and keeps the lines of the kept pairs in a file beside
    the splits, with two hashes per pair in memory; once every pair is known the duplicates and the
    split are decided from the hashes, and the second pass deals the kept lines to the splits in
    input order. With ``official_valid`` (the corpus brings its own validation set) every cleaned
    pair is for training, the official pairs are the valid split (normalised only), and the test
    split is empty: such corpora name their test sets in ``tests``.
    """
    corpus = output_file(corpus)
    cleaner = Cleaner(config)
    with atomic_dir(out_dir) as out:
        kept_path = out / ".kept.tsv"
        with open(kept_path, "w", encoding="utf-8", newline="\n") as kept:
            for first, lines in line_chunks(corpus, remedy=REMAKE, chunk_bytes=chunk_bytes, progress="clean"):
                kept.writelines(cleaner.add(parsed_pairs(first, lines, str(corpus))))
        if not cleaner.kept:
            raise DataError(f"{corpus}: every pair was removed by cleaning ({cleaner.counts}); "
                            "loosen clean.* in params.yaml")
        where = cleaner.assignment(split=official_valid is None)
        sizes = {name: int((where == code).sum()) for name, code in (("train", TRAIN), ("valid", VALID),
                                                                    ("test", TEST))}
        files = {code: open(out / f"{name}.tsv", "wb")
                 for name, code in (("train", TRAIN), ("valid", VALID), ("test", TEST))}
        try:
            done = 0
            for _, lines in line_chunks(kept_path, remedy=REMAKE, chunk_bytes=chunk_bytes):
                for line, code in zip(lines, where[done:done + len(lines)].tolist()):
                    if code != DUPLICATE:
                        files[code].write(line + b"\n")
                done += len(lines)
        finally:
            for fh in files.values():
                fh.close()
        kept_path.unlink()
        if official_valid is not None:
            valid = normalize_pairs(read_corpus(official_valid))
            write_split(valid, out / "valid.tsv")
            sizes["valid"] = len(valid)
    return CleanReport(input_pairs=cleaner.input_pairs, **cleaner.counts, **sizes)

