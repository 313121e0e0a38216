"""The tokenize stage's work, a chunk at a time: SentencePiece models learnt from the start of the
training split, then every split encoded into flat arrays (:mod:`.encoded`).

Memory stays bounded by the chunk and by the sentences SentencePiece learns from
(``tokenize.max_training_sentences``), whatever the corpus size; SentencePiece encodes each chunk
on all cores.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

from ..params.config import TokenizeConfig
from .chunks import CHUNK_BYTES
from .clean import split_chunks
from .encoded import SplitWriter
from .subwords import Tokenizer, train_sentencepiece


def side_sentences(split: str | Path, side: int, limit: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
    """The first ``limit`` sentences of one side (0: source, 1: target) of a split."""
    sentences = (s for chunk in split_chunks(split, chunk_bytes) for s in chunk[side])
    return itertools.islice(sentences, limit)


def train_tokenizers(train: str | Path, config: TokenizeConfig,
                     chunk_bytes: int = CHUNK_BYTES) -> tuple[bytes, bytes]:
    """The source and target SentencePiece models (one model twice with ``joint``), each learnt from
    the first ``max_training_sentences`` sentences it is given: a side's first ones, or with ``joint``
    the first of all sources followed by all targets."""
    limit = config.max_training_sentences
    if config.joint:
        both = itertools.chain(side_sentences(train, 0, limit, chunk_bytes), side_sentences(train, 1, limit, chunk_bytes))
        proto = train_sentencepiece(itertools.islice(both, limit), config, "joint")
        return proto, proto
    return (train_sentencepiece(side_sentences(train, 0, limit, chunk_bytes), config, "source"),
            train_sentencepiece(side_sentences(train, 1, limit, chunk_bytes), config, "target"))


def encode_split(split: str | Path, folder: str | Path, src_tok: Tokenizer, tgt_tok: Tokenizer,
                 chunk_bytes: int = CHUNK_BYTES, progress: str | None = None) -> int:
    """Encode a split the clean stage wrote into the encoded split ``folder``; its number of pairs."""
    with SplitWriter(folder) as out:
        for sources, targets in split_chunks(split, chunk_bytes, progress):
            out.append(src_tok.encode(sources), tgt_tok.encode(targets))  # SentencePiece: on every core
    return out.pairs
