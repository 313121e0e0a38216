"""Named test sets (``tests`` in params.yaml): each fetched and normalised on its own, so that
adding one decodes and scores only it, and nothing upstream reruns.

A test set is either official files (a TSV or two line-aligned files, local or URL pinned by
sha256), normalised like the corpus but never filtered, deduplicated or subsampled, or the
test part of the clean stage's random split of a single corpus.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.atomic import atomic_dir, write_json
from ..core.errors import ParamError, Seq2SeqError
from ..params.config import Params, TestSetConfig
from .clean import group_key, normalize_pairs, parse_corpus, read_split, split_chunks, write_split
from .download import fetch_parallel, files_record

PAIRS = "pairs.tsv"


def test_set_from_args(params: Params, args: list[str], stage: str) -> tuple[str, TestSetConfig]:
    """The test set a per-test-set stage was started for (``python -m stages.STAGE NAME``), with its
    config ``tests.NAME``; a one-line error naming the test sets there are otherwise."""
    known = ", ".join(params.tests)
    args = [a for a in args if a != "--debug"]
    if len(args) != 1:
        raise Seq2SeqError(f"usage: python -m stages.{stage} NAME, NAME one of the test sets in params.yaml: {known}")
    name = args[0]
    if name not in params.tests:
        raise Seq2SeqError(f"params.yaml: tests.{name}: no such test set; add it to tests, or use one of: {known}")
    return name, params.tests[name]


@dataclass(frozen=True)
class TestSetReport:
    pairs: int
    distinct_sources: int
    pairs_sharing_a_source: int  # pairs whose source sentence has other translations in the set
    sources_in_train: int  # pairs whose source (case and punctuation folded) is also a training source
    pairs_in_train: int  # pairs found verbatim (source and target) among the training pairs

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def prepare_test_set(name: str, config: TestSetConfig, clean_dir: str | Path, out_dir: str | Path,
                     max_bytes: int) -> TestSetReport:
    """Write ``out_dir/pairs.tsv`` and ``out_dir/provenance.json`` for test set ``name``, and
    report its size and its overlap with the training split."""
    clean_dir = Path(clean_dir)
    if config.random_split:
        split = clean_dir / "test.tsv"
        if not split.is_file() or not split.read_bytes().strip():
            raise ParamError(f"tests.{name}.random_split", True, "the clean stage made no random test split "
                             "(data.valid names an official validation set): name this test set's files instead")
        pairs = read_split(split)
        provenance: dict[str, object] = {"origin": "the clean stage's random split (data/clean/test.tsv)"}
    else:
        data, files = fetch_parallel(config, f"tests.{name}", max_bytes)
        pairs = normalize_pairs(parse_corpus(data, config.path, f"tests.{name}.path"))
        provenance = files_record(files, data)
    report = overlap_report(pairs, clean_dir / "train.tsv")
    with atomic_dir(out_dir) as out:
        write_split(pairs, out / PAIRS)
        write_json(out / "provenance.json", provenance | {"report": report.as_dict()})
    return report


def overlap_report(pairs: pd.DataFrame, train: str | Path) -> TestSetReport:
    """How ``pairs`` overlap the training split in the file ``train`` (read a chunk at a time: memory
    grows with the test set, not with the training split)."""
    keys = list(pairs["source"].map(group_key))
    wanted_keys, wanted_pairs = set(keys), set(zip(pairs["source"], pairs["target"]))
    found_keys: set[str] = set()
    found_pairs: set[tuple[str, str]] = set()
    for sources, targets in split_chunks(train, progress="testset: overlap with train"):
        found_keys.update(k for k in map(group_key, sources) if k in wanted_keys)
        found_pairs.update(p for p in zip(sources, targets) if p in wanted_pairs)
    per_source = pairs["source"].map(pairs["source"].value_counts())
    return TestSetReport(
        pairs=len(pairs),
        distinct_sources=int(pairs["source"].nunique()),
        pairs_sharing_a_source=int((per_source > 1).sum()),
        sources_in_train=sum(k in found_keys for k in keys),
        pairs_in_train=sum(p in found_pairs for p in zip(pairs["source"], pairs["target"])),
    )
