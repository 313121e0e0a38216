"""Translate text with a trained model: ``Translator.load(path_or_uri).translate([...])``."""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from .batching import source_tensor
from .bundle import CONFIG_FILE, Bundle, load_bundle
from .devices import resolve_device
from .errors import ModelBundleError
from .model import Seq2Seq
from .search import Hypothesis, beam_search, max_lengths

MAX_SOURCE_TOKENS = 256


@dataclass(frozen=True)
class SearchSettings:
    beam: int = 5
    nbest: int = 1
    length_penalty: float = 1.0
    max_length_ratio: float = 1.5
    max_length_extra: int = 10
    batch_size: int = 64


def translate_ids(
    model: Seq2Seq, sources: Sequence[Sequence[int]], settings: SearchSettings, device: torch.device,
) -> list[list[Hypothesis]]:
    """Search for every source (token ids without </s>), in length-sorted batches; results in input order."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    for start in range(0, len(order), settings.batch_size):
        chunk = order[start:start + settings.batch_size]
        src, lengths = source_tensor([sources[i] for i in chunk])
        limit = max_lengths(lengths - 1, settings.max_length_ratio, settings.max_length_extra)
        hyps = beam_search(model, src.to(device), lengths, limit, settings.beam, settings.length_penalty,
                           settings.nbest)
        for i, h in zip(chunk, hyps):
            results[i] = h
    return results


class Translator:
    """A loaded bundle plus search settings."""

    def __init__(self, bundle: Bundle, device: torch.device, settings: SearchSettings | None = None) -> None:
        self.bundle = bundle
        self.device = device
        self.settings = settings or SearchSettings()

    @classmethod
    def load(cls, path_or_uri: str | Path, device: str = "auto", **settings: object) -> "Translator":
        """Load from a bundle folder, or from an MLflow model URI (``runs:/ID/model``, ``models:/NAME/1``)."""
        torch_device = resolve_device(device, "--device")
        bundle = load_bundle(resolve_bundle_path(path_or_uri), torch_device)
        return cls(bundle, torch_device, SearchSettings(**settings))  # type: ignore[arg-type]

    def translate(self, sentences: Sequence[str], **overrides: object) -> list[str]:
        """Best translation of each sentence; an empty sentence gives an empty string."""
        return [nbest[0][0] for nbest in self.translate_nbest(sentences, **overrides)]

    def translate_nbest(self, sentences: Sequence[str], **overrides: object) -> list[list[tuple[str, float]]]:
        """(translation, score) lists, best first, ``nbest`` long (one entry for an empty sentence)."""
        settings = replace(self.settings, **overrides)  # type: ignore[arg-type]
        texts = [s.strip() for s in sentences]
        ids = self.bundle.src_tokenizer.encode(texts)
        for n, seq in enumerate(ids):
            if len(seq) > MAX_SOURCE_TOKENS:
                print(f"warning: sentence {n + 1} has {len(seq)} subword tokens; only the first "
                      f"{MAX_SOURCE_TOKENS} are translated", file=sys.stderr)
                ids[n] = seq[:MAX_SOURCE_TOKENS]
        non_empty = [i for i, t in enumerate(texts) if t]
        hyps = translate_ids(self.bundle.model, [ids[i] for i in non_empty], settings, self.device)
        out: list[list[tuple[str, float]]] = [[("", 0.0)] for _ in texts]
        for i, hs in zip(non_empty, hyps):
            words = self.bundle.tgt_tokenizer.decode([h.tokens for h in hs])
            out[i] = [(w, h.score) for w, h in zip(words, hs)]
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


def resolve_bundle_path(path_or_uri: str | Path) -> Path:
    """A bundle folder as given, or the bundle inside an MLflow model downloaded from its URI."""
    text = str(path_or_uri)
    if Path(text).exists() or ":/" not in text:
        return Path(text)
    import mlflow

    from .tracking import configure_tracking

    configure_tracking()
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    except Exception as err:  # MLflow raises several types for unknown runs/models
        raise ModelBundleError(f"{text}: cannot fetch this MLflow model ({str(err).splitlines()[0]})") from None
    found = sorted(p.parent for p in local.rglob(CONFIG_FILE) if (p.parent / "weights.pt").exists())
    if not found:
        raise ModelBundleError(f"{text}: the MLflow model holds no seq2seq bundle")
    return found[0]
