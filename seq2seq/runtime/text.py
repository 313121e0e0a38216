"""Text in, text out, whatever runs the model: the translators' shared API.

:class:`TextTranslator` turns sentences into subword ids, has its model search them
(``search_ids``), and turns the hypotheses back into text. Two kinds of translator fill in
the search: the PyTorch one (:class:`seq2seq.decoding.translator.Translator`) and the exported
model's (:class:`seq2seq.runtime.translator.OnnxTranslator`), which must not need torch; so no
torch here.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Sequence

from ..data.subwords import Tokenizer
from ..search.rules import Hypothesis
from ..search.settings import SearchSettings

MAX_SOURCE_TOKENS = 256


@dataclass
class Translation:
    """One hypothesis for one sentence, with what it is made of."""

    text: str
    score: float  # what hypotheses are ranked by: log_prob / length penalty
    log_prob: float
    source_pieces: list[str]  # the subword pieces of the source, then </s>
    target_pieces: list[str]  # the subword pieces of the translation, then </s> if it was emitted
    attention: Any  # [target pieces, source pieces] (torch or NumPy), each row sums to 1; None unless asked


def nbest_table(results: Sequence[Sequence[Translation]]) -> str:
    """N-best lists as TSV: line (from 1), rank (from 1), score, log_prob, translation."""
    rows = ["line\trank\tscore\tlog_prob\ttranslation\n"]
    for line, hyps in enumerate(results, start=1):
        rows += [f"{line}\t{rank}\t{t.score:.6f}\t{t.log_prob:.6f}\t{t.text}\n" for rank, t in enumerate(hyps, 1)]
    return "".join(rows)


class TextTranslator:
    """Sentences -> subword ids -> ``search_ids`` -> text, with search settings."""

    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    settings: SearchSettings

    def search_ids(self, sources: list[list[int]], settings: SearchSettings) -> list[list[Hypothesis]]:
        """Per source (token ids without </s>), its hypotheses best first."""
        raise NotImplementedError

    def translate(self, sentences: Sequence[str], **overrides: object) -> list[str]:
        """Best translation of each sentence; an empty sentence gives an empty string."""
        return [nbest[0][0] for nbest in self.translate_nbest(sentences, **overrides)]

    def translate_nbest(self, sentences: Sequence[str], **overrides: object) -> list[list[tuple[str, float]]]:
        """(translation, score) lists, best first, ``nbest`` long (one entry for an empty sentence)."""
        return [[(t.text, t.score) for t in ts] for ts in self.translate_details(sentences, **overrides)]

    def translate_details(self, sentences: Sequence[str], **overrides: object) -> list[list[Translation]]:
        """Per sentence, its hypotheses best first, with scores, subword pieces and (when
        ``attention=True``) attention weights. An empty sentence gives one empty translation."""
        settings = replace(self.settings, **overrides)  # type: ignore[arg-type]
        texts = [s.strip() for s in sentences]
        src_tok, tgt_tok = self.src_tokenizer, self.tgt_tokenizer
        ids = src_tok.encode(texts)
        for n, seq in enumerate(ids):
            if len(seq) > MAX_SOURCE_TOKENS:
                print(f"warning: sentence {n + 1} has {len(seq)} subword tokens; only the first "
                      f"{MAX_SOURCE_TOKENS} are translated", file=sys.stderr)
                ids[n] = seq[:MAX_SOURCE_TOKENS]
        non_empty = [i for i, t in enumerate(texts) if t]
        hyps = self.search_ids([ids[i] for i in non_empty], settings)
        out = [[Translation("", 0.0, 0.0, [], [], None)] for _ in texts]
        for i, hs in zip(non_empty, hyps):
            words = tgt_tok.decode([h.tokens for h in hs])
            source_pieces = src_tok.pieces(ids[i]) + ["</s>"]
            out[i] = []
            for word, h in zip(words, hs):
                target_pieces = tgt_tok.pieces(h.tokens) + (["</s>"] if h.ended else [])
                out[i].append(Translation(word, h.score, h.log_prob, source_pieces, target_pieces, h.attention))
        return out

    def stream(self, lines: Iterable[str], **overrides: object) -> Iterator[list[tuple[str, float]]]:
        """Translate lines as they arrive, one batch at a time (for shell pipes)."""
        batch_size = int(overrides.get("batch_size", self.settings.batch_size))  # type: ignore[arg-type]
        pending: list[str] = []
        for line in lines:
            pending.append(line.rstrip("\n"))
            if len(pending) >= batch_size:
                yield from self.translate_nbest(pending, **overrides)
                pending = []
        if pending:
            yield from self.translate_nbest(pending, **overrides)
