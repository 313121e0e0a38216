"""Corpus scores with sacreBLEU: BLEU, chrF and TER, each with its signature."""
from __future__ import annotations

from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from .config import ScoreConfig
from .errors import DataError


def score_corpus(hypotheses: Sequence[str], references: Sequence[str], config: ScoreConfig | None = None) -> dict:
    """``{"bleu": .., "chrf": .., "ter": .., "signatures": {...}, "sentences": n}``."""
    config = config or ScoreConfig()
    if len(hypotheses) != len(references):
        raise DataError(f"{len(hypotheses)} hypotheses but {len(references)} references; rerun the decode stage")
    bleu = BLEU(tokenize=config.bleu_tokenize, lowercase=config.lowercase)
    chrf = CHRF()
    ter = TER(case_sensitive=not config.lowercase)
    refs = [list(references)]
    results = {
        "bleu": bleu.corpus_score(hypotheses, refs),
        "chrf": chrf.corpus_score(hypotheses, refs),
        "ter": ter.corpus_score(hypotheses, refs),
    }
    out: dict = {name: round(float(r.score), 4) for name, r in results.items()}
    out["sentences"] = len(hypotheses)
    out["signatures"] = {
        "bleu": str(bleu.get_signature()),
        "chrf": str(chrf.get_signature()),
        "ter": str(ter.get_signature()),
    }
    return out


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """Quick BLEU and chrF (default settings), for validation during training."""
    refs = [list(references)]
    return float(BLEU().corpus_score(hypotheses, refs).score), float(CHRF().corpus_score(hypotheses, refs).score)
