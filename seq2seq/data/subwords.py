"""SentencePiece subword models (tokenize stage; the encoded splits: :mod:`.encoded`).

Ids are fixed for every model this project trains: ``<pad>`` 0, ``<unk>`` 1,
``<s>`` 2 (begin of sentence), ``</s>`` 3 (end of sentence).
"""
from __future__ import annotations

import io
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

import sentencepiece as spm

from ..core.errors import DataError, ModelBundleError
from ..core.token_ids import BOS_ID, EOS_ID, PAD_ID, UNK_ID  # noqa: F401  (their home; imported from here too)
from ..params.config import TokenizeConfig


class Tokenizer:
    """One SentencePiece model: text <-> ids."""

    def __init__(self, model_proto: bytes, name: str = "tokenizer", remedy: str = "") -> None:
        self.name = name
        self.proto = model_proto
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(model_proto)
        except Exception:  # sentencepiece raises RuntimeError/OSError variants, with C++ source lines
            what = "empty" if not model_proto else f"{len(model_proto):,} bytes, truncated or another kind of file"
            raise ModelBundleError(f"{name}: not a SentencePiece model ({what})"
                                   + (f"; {remedy}" if remedy else "")) from None
        specials = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if specials != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ModelBundleError(
                f"{name}: special ids (pad, unk, bos, eos) are {specials}, expected (0, 1, 2, 3); "
                "retrain it with the tokenize stage"
            )

    @classmethod
    def load(cls, path: str | Path, remedy: str = "") -> "Tokenizer":
        """``remedy``: what to do if the file is missing or not a SentencePiece model."""
        path = Path(path)
        if not path.is_file():
            raise ModelBundleError(f"{path}: SentencePiece model not found" + (f"; {remedy}" if remedy else ""))
        return cls(path.read_bytes(), str(path), remedy)

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self._sp.encode(list(texts), out_type=int)

    def sample(self, texts: Sequence[str], alpha: float, seed: int) -> list[list[int]]:
        """One segmentation of each text drawn at random (subword regularization): for a unigram
        model ``alpha`` smooths the segmentations' distribution (smaller: more varied), for BPE it
        is the probability of dropping a merge (BPE-dropout). The same seed gives the same pieces.

        SentencePiece draws from a generator per thread, seeded from its global seed when the
        thread first samples; so each call samples in a thread of its own, started after the seed
        is set, which keeps the result a function of ``seed`` alone."""
        outcome: dict[str, Any] = {}

        def draw() -> None:
            try:
                spm.set_random_generator_seed(seed)
                outcome["ids"] = self._sp.encode(list(texts), out_type=int, enable_sampling=True, alpha=alpha,
                                                 nbest_size=-1, num_threads=1)
            except Exception as err:  # raised again in the calling thread
                outcome["error"] = err

        worker = threading.Thread(target=draw, name="subword-sampling")
        worker.start()
        worker.join()
        if "error" in outcome:
            raise DataError(f"{self.name}: sampling segmentations failed ({outcome['error']})")
        return outcome["ids"]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return [self._sp.decode([i for i in seq if i > EOS_ID]) for seq in ids]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """The subword pieces of ids, as SentencePiece writes them (``▁`` marks a word start)."""
        return [self._sp.id_to_piece(int(i)) for i in ids]


def train_sentencepiece(sentences: Iterable[str], config: TokenizeConfig, what: str) -> bytes:
    """Train one SentencePiece model and return its serialized proto."""
    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=buffer,
            vocab_size=config.vocab_size,
            model_type=config.model_type,
            character_coverage=config.character_coverage,
            hard_vocab_limit=config.hard_vocab_limit,
            input_sentence_size=config.max_training_sentences,
            shuffle_input_sentence=False,  # deterministic: the first max_training_sentences
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as err:
        message = str(err)
        match = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", message) or re.search(
            r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message
        )
        if match and "too high" in message:
            raise DataError(
                f"tokenize.vocab_size: {config.vocab_size} is larger than the {what} text supports; "
                f"set it to {match.group(2)} or less, or set tokenize.hard_vocab_limit: false"
            ) from None
        if match:
            raise DataError(
                f"tokenize.vocab_size: {config.vocab_size} is smaller than the {match.group(2)} characters of "
                f"the {what} text; raise it or lower tokenize.character_coverage"
            ) from None
        raise DataError(f"tokenize ({what}): SentencePiece failed: {message.splitlines()[-1]}") from None
    return buffer.getvalue()
