"""Corpus scores with sacreBLEU: BLEU, chrF and TER, each with its signature."""
from __future__ import annotations

from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from ..core.errors import DataError
from ..params.config import ScoreConfig


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


def multi_reference_scores(sources: Sequence[str], hypotheses: Sequence[str], references: Sequence[str],
                           config: ScoreConfig | None = None) -> dict | None:
    """BLEU and chrF with every reference of a source: where a test source appears in several
    pairs (other valid translations), each distinct source is scored once, its first
    hypothesis against all of its references. ``None`` when no source repeats."""
    if not len(sources) == len(hypotheses) == len(references):
        raise DataError(f"{len(sources)} sources, {len(hypotheses)} hypotheses and {len(references)} references: "
                        "rerun the decode stage")
    grouped: dict[str, tuple[str, list[str]]] = {}
    for source, hypothesis, reference in zip(sources, hypotheses, references):
        grouped.setdefault(source, (hypothesis, []))[1].append(reference)
    if len(grouped) == len(sources):
        return None
    config = config or ScoreConfig()
    width = max(len(refs) for _, refs in grouped.values())
    hyps = [hyp for hyp, _ in grouped.values()]
    streams = [[refs[k] if k < len(refs) else None for _, refs in grouped.values()] for k in range(width)]
    bleu = BLEU(tokenize=config.bleu_tokenize, lowercase=config.lowercase)
    chrf = CHRF()
    return {"bleu": round(float(bleu.corpus_score(hyps, streams).score), 4),
            "chrf": round(float(chrf.corpus_score(hyps, streams).score), 4),
            "sentences": len(grouped), "max_references": width,
            "signatures": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}}


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """Quick BLEU and chrF (default settings), for validation during training."""
    refs = [list(references)]
    return float(BLEU().corpus_score(hypotheses, refs).score), float(CHRF().corpus_score(hypotheses, refs).score)


def length_buckets(width: int, last: int) -> list[tuple[int, int | None]]:
    """Source-length buckets in words: 1..width, width+1..2*width, ..., then last+1 and up."""
    edges = list(range(width, last + 1, width))
    buckets: list[tuple[int, int | None]] = []
    low = 1
    for high in edges:
        buckets.append((low, high))
        low = high + 1
    buckets.append((low, None))
    return buckets


def scores_by_length(sources: Sequence[str], hypotheses: Sequence[str], references: Sequence[str],
                     width: int = 5, last: int = 30) -> list[dict]:
    """BLEU and chrF of the sentences in each source-length bucket (empty buckets left out).

    Shows where a model loses quality as inputs grow: the plain encoder-decoder's single
    context vector is expected to fall off on long sentences, attention much less.
    """
    if not len(sources) == len(hypotheses) == len(references):
        raise DataError(f"{len(sources)} sources, {len(hypotheses)} hypotheses and {len(references)} references: "
                        "rerun the decode stage")
    words = [len(s.split()) for s in sources]
    rows = []
    for low, high in length_buckets(width, last):
        picked = [i for i, n in enumerate(words) if low <= n and (high is None or n <= high)]
        if not picked:
            continue
        bleu, chrf = bleu_chrf([hypotheses[i] for i in picked], [references[i] for i in picked])
        rows.append({"bucket": f"{low}-{high}" if high else f"{low}+", "min_words": low,
                     "max_words": high if high else max(words[i] for i in picked),
                     "sentences": len(picked), "bleu": round(bleu, 2), "chrf": round(chrf, 2)})
    return rows


def spread(values: Sequence[float]) -> dict:
    """``{"mean": .., "sd": .., "n": ..}`` of scores over runs (seeds): the sample standard deviation
    (n - 1; 0.0 for one run), what a results table reports as mean ± sd."""
    n = len(values)
    mean = sum(values) / n
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {"mean": round(mean, 4), "sd": round(sd, 4), "n": n}
