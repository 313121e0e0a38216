"""Subword regularization: a new segmentation of the training pairs for every epoch.

With ``train.subword_sampling`` > 0 the model never sees one fixed split of a word into pieces:
each epoch, every training sentence is segmented anew by sampling from its SentencePiece model
(Kudo 2018 for unigram models, Provilkov et al. 2020's BPE-dropout for BPE), so the model learns
words from their several spellings in pieces, a regularizer that pays most on small corpora.
Validation, decoding and translation keep the one most likely segmentation.

The segmentation of epoch ``e`` is a function of (``train.seed``, ``e``) alone, so a resumed run
sees the same pieces as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .encoded import EncodedSplit
from .subwords import Tokenizer


@dataclass(frozen=True)
class SampledSegmentations:
    """The training pairs as text and the tokenizers that segment them, one draw per epoch."""

    sources: Sequence[str]
    targets: Sequence[str]
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    alpha: float
    seed: int

    def epoch(self, epoch: int) -> EncodedSplit:
        """The training split as epoch ``epoch`` sees it."""
        src_seed, tgt_seed = (int(s) for s in np.random.SeedSequence([self.seed, epoch]).generate_state(2))
        src = self.src_tokenizer.sample(self.sources, self.alpha, src_seed)
        tgt = self.tgt_tokenizer.sample(self.targets, self.alpha, tgt_seed)
        return EncodedSplit([np.asarray(s, dtype=np.int32) for s in src], [np.asarray(t, dtype=np.int32) for t in tgt])
