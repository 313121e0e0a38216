"""Text in, text out, whatever runs the model: the translators' shared API.

:class:`TextTranslator` turns sentences into subword ids, has its model (or an ensemble of models)
search them, and turns the hypotheses back into text; it also scores given translations. Two kinds
of translator fill in the backend the search runs on: the PyTorch one
(:class:`seq2seq.decoding.translator.Translator`) and the exported model's
(:class:`seq2seq.runtime.translator.OnnxTranslator`), which must not need torch; so no torch here.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Sequence

from ..core.errors import Seq2SeqError
from ..data.subwords import Tokenizer
from ..search import algorithms
from ..search.backend import Backend
from ..search.ensemble import Ensemble, shares
from ..search.forced import Scored, score_ids
from ..search.rules import Hypothesis
from ..search.settings import SearchSettings
from .alignment import word_alignment

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

    def alignment(self) -> list[tuple[int, int]]:
        """Hard word alignment from the attention (asked for with ``attention=True``): (source word,
        target word) pairs, 0-based, one per target word (:func:`~.alignment.word_alignment`)."""
        if not self.target_pieces:  # an empty sentence's empty translation
            return []
        if self.attention is None:
            raise ValueError("no attention weights: translate with attention=True, with a model that attends")
        return word_alignment(self.source_pieces, self.target_pieces, self.attention)


@dataclass
class ScoredTranslation:
    """A given translation of one sentence, scored by the model (:meth:`TextTranslator.score`)."""

    text: str
    score: float  # as a search ranks it: log_prob / length penalty
    log_prob: float  # total log-probability, </s> included
    target_pieces: list[str]  # the subword pieces of the translation, then </s>
    token_log_probs: list[float]  # one per target piece


def nbest_table(results: Sequence[Sequence[Translation]]) -> str:
    """N-best lists as TSV: line (from 1), rank (from 1), score, log_prob, translation."""
    rows = ["line\trank\tscore\tlog_prob\ttranslation\n"]
    for line, hyps in enumerate(results, start=1):
        rows += [f"{line}\t{rank}\t{t.score:.6f}\t{t.log_prob:.6f}\t{t.text}\n" for rank, t in enumerate(hyps, 1)]
    return "".join(rows)


class TextTranslator:
    """Sentences -> subword ids -> search -> text, with search settings. ``models``: what searches (one
    model, or several as an ensemble with ``weights``: :func:`ensemble`)."""

    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    settings: SearchSettings
    models: list[Any]
    weights: list[float] | None = None

    def backend_of(self, model: Any) -> Backend:
        """The search's backend running ``model``."""
        raise NotImplementedError

    @property
    def attends(self) -> bool:
        """Whether a model of the translator has attention (so translations can carry alignments)."""
        return self.backend().has_attention

    def backend(self) -> Backend:
        """What the search runs on: the one model's backend, or the ensemble of them all."""
        members = [self.backend_of(model) for model in self.models]
        return members[0] if len(members) == 1 else Ensemble(members, self.weights)

    def search_ids(self, sources: list[list[int]], settings: SearchSettings) -> list[list[Hypothesis]]:
        """Per source (token ids without </s>), its hypotheses best first."""
        return algorithms.translate_ids(self.backend(), sources, settings)

    def score_ids(self, sources: list[list[int]], targets: list[list[int]], settings: SearchSettings
                  ) -> list[Scored]:
        """Forced decoding of ``targets`` given ``sources`` (ids without </s>): :func:`~seq2seq.search.forced.score_ids`."""
        return score_ids(self.backend(), sources, targets, settings.length_penalty, settings.batch_size)

    def score(self, sentences: Sequence[str], translations: Sequence[str], **overrides: object
              ) -> list[ScoredTranslation]:
        """The model's (or ensemble's) log-probability of each given translation of each sentence, in
        total and per target piece, and its score as a search ranks it (``length_penalty`` of the
        settings). For filtering a corpus or rescoring an n-best list."""
        if len(sentences) != len(translations):
            raise ValueError(f"{len(sentences)} sentences but {len(translations)} translations")
        settings = replace(self.settings, **overrides)  # type: ignore[arg-type]
        sources = self.source_ids([s.strip() for s in sentences])
        targets = self.tgt_tokenizer.encode([t.strip() for t in translations])  # whole: a cut one would score less
        scored = self.score_ids(sources, targets, settings)
        return [ScoredTranslation(text.strip(), s.score, s.log_prob, self.tgt_tokenizer.pieces(s.tokens) + ["</s>"],
                                  s.token_log_probs) for text, s in zip(translations, scored)]

    def source_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's subword ids, cut to :data:`MAX_SOURCE_TOKENS` (with a warning)."""
        ids = self.src_tokenizer.encode(texts)
        for n, seq in enumerate(ids):
            if len(seq) > MAX_SOURCE_TOKENS:
                print(f"warning: sentence {n + 1} has {len(seq)} subword tokens; only the first "
                      f"{MAX_SOURCE_TOKENS} are translated", file=sys.stderr)
                ids[n] = seq[:MAX_SOURCE_TOKENS]
        return ids

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
        ids = self.source_ids(texts)
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

    def stream(self, lines: Iterable[str], **overrides: object) -> Iterator[list[Translation]]:
        """Translate lines as they arrive, one batch at a time (for shell pipes): each line's
        hypotheses, best first, as :meth:`translate_details` gives them."""
        batch_size = int(overrides.get("batch_size", self.settings.batch_size))  # type: ignore[arg-type]
        pending: list[str] = []
        for line in lines:
            pending.append(line.rstrip("\n"))
            if len(pending) >= batch_size:
                yield from self.translate_details(pending, **overrides)
                pending = []
        if pending:
            yield from self.translate_details(pending, **overrides)

def ensemble(translators: Sequence[TextTranslator], names: Sequence[str], weights: Sequence[float] | None = None
             ) -> TextTranslator:
    """One translator searching with the models of all ``translators`` (``names``: how errors name
    them) as an ensemble, weighted by ``weights`` (one per translator; equal without). They must be
    of one kind (all PyTorch bundles or all exports) and share both tokenizers."""
    first = translators[0]
    for name, other in zip(names[1:], translators[1:]):
        if type(other) is not type(first):
            raise Seq2SeqError(f"{name}: an ensemble's models are all trained bundles or all exported folders; "
                               f"{names[0]} is the other kind")
        for side in ("src_tokenizer", "tgt_tokenizer"):
            if getattr(other, side).proto != getattr(first, side).proto:
                raise Seq2SeqError(f"{name}: its {side.split('_')[0]} tokenizer differs from that of {names[0]}: the "
                                   "models of an ensemble share their tokenizers (train them on one tokenize stage)")
    try:
        shares(weights, len(translators))
    except ValueError:
        raise Seq2SeqError(f"--weights: got {list(weights or [])}; give one number > 0 per model "
                           f"({len(translators)})") from None
    joined = copy.copy(first)
    joined.models = [model for t in translators for model in t.models]
    joined.weights = None if weights is None else [float(w) for w in weights]
    return joined
