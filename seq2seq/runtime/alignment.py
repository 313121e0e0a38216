"""Hard word alignments from attention, in the Pharaoh format (``i-j``: source word i, target word j).

Attention weighs subword pieces; words are what a user aligns. A SentencePiece piece that starts
with ``▁`` starts a word (the text's whitespace-separated words), the others continue it. A target
word's attention over the source is the mean of its pieces' rows; a source word's share is the sum
of its pieces' columns (the source's ``</s>`` takes none). Each target word is aligned to the
source word it attends to most: exactly one source position per target word (Marian's
``--alignment hard``, fairseq's ``--print-alignment`` from attention).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

WORD_START = "\u2581"
EOS = "</s>"


def word_index(pieces: Sequence[str]) -> list[int]:
    """The word of each piece (from 0), ``</s>`` excluded: a piece starting with ``▁`` starts a word,
    except right after a lone ``▁`` (which starts the word its next piece finishes); a lone ``▁`` at
    the end belongs to the word before."""
    words: list[int] = []
    for n, piece in enumerate(pieces):
        if piece == EOS:
            break
        lone_before = n > 0 and pieces[n - 1] == WORD_START
        last_lone = piece == WORD_START and (n + 1 == len(pieces) or pieces[n + 1] == EOS) and words
        starts = piece.startswith(WORD_START) and not lone_before and not last_lone
        words.append(0 if not words else words[-1] + (1 if starts else 0))
    return words


def word_alignment(source_pieces: Sequence[str], target_pieces: Sequence[str], attention: Any
                   ) -> list[tuple[int, int]]:
    """(source word, target word) pairs, one per target word, sorted by target word.

    attention: [target pieces (with ``</s>`` if emitted), source pieces + ``</s>``] (NumPy or torch)."""
    weights = np.asarray(attention.float().cpu() if hasattr(attention, "float") else attention, dtype=np.float64)
    source_words, target_words = word_index(source_pieces), word_index(target_pieces)
    if not target_words or not source_words:
        return []
    by_source = np.zeros((weights.shape[0], source_words[-1] + 1))
    np.add.at(by_source.T, source_words, weights[:, :len(source_words)].T)  # sum each source word's pieces
    pairs = []
    for j in range(target_words[-1] + 1):
        rows = [n for n, w in enumerate(target_words) if w == j]
        pairs.append((int(by_source[rows].mean(axis=0).argmax()), j))
    return pairs


def pharaoh(pairs: Sequence[tuple[int, int]]) -> str:
    """``0-0 1-2 ...``"""
    return " ".join(f"{i}-{j}" for i, j in pairs)
