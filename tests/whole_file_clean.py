"""The clean stage as it was before it streamed, whole-file in pandas: the reference the chunked
:func:`seq2seq.data.clean.clean_corpus` must agree with, pair for pair (tests only)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from seq2seq.core.errors import DataError
from seq2seq.data.clean import SPLITS, group_key, normalize_text, read_corpus
from seq2seq.params.config import CleanConfig


def whole_file_clean(corpus: str | Path, config: CleanConfig) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Each split of ``corpus`` and the drop counts, read, cleaned and split in memory at once."""
    kept, counts = clean_pairs(read_corpus(corpus), config)
    return split_pairs(kept, config), counts


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
