"""Translate text with a trained model: ``Translator.load(path_or_uri).translate([...])``."""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from ..core.devices import resolve_device
from ..core.errors import ModelBundleError, Seq2SeqError
from ..core.search_settings import SearchSettings
from ..fast.allocator import reuse_freed_memory
from ..model.seq2seq import Seq2Seq
from .bundle import CONFIG_FILE, Bundle, load_bundle
from .search import translate_ids

MAX_SOURCE_TOKENS = 256


@dataclass
class Translation:
    """One hypothesis for one sentence, with what it is made of."""

    text: str
    score: float  # what hypotheses are ranked by: log_prob / length penalty
    log_prob: float
    source_pieces: list[str]  # the subword pieces of the source, then </s>
    target_pieces: list[str]  # the subword pieces of the translation, then </s> if it was emitted
    attention: torch.Tensor | None  # [target pieces, source pieces], each row sums to 1; None unless asked


def nbest_table(results: Sequence[Sequence[Translation]]) -> str:
    """N-best lists as TSV: line (from 1), rank (from 1), score, log_prob, translation."""
    rows = ["line\trank\tscore\tlog_prob\ttranslation\n"]
    for line, hyps in enumerate(results, start=1):
        rows += [f"{line}\t{rank}\t{t.score:.6f}\t{t.log_prob:.6f}\t{t.text}\n" for rank, t in enumerate(hyps, 1)]
    return "".join(rows)


class Translator:
    """A loaded bundle plus search settings."""

    def __init__(self, bundle: Bundle, device: torch.device, settings: SearchSettings | None = None) -> None:
        self.bundle = bundle
        self.device = device
        self.settings = settings or SearchSettings()

    @classmethod
    def load(cls, path_or_uri: str | Path, device: str = "auto", quantize: str = "none",
             **settings: object) -> "Translator":
        """Load from a bundle folder, or from an MLflow model URI (``runs:/ID/model``, ``models:/NAME/1``).

        ``quantize="int8"``: dynamic int8 quantization of the linear and recurrent layers
        (CPU only): faster decoding, scores slightly different from the float model's.
        Like training, this keeps freed heap memory in the process for reuse
        (:func:`seq2seq.fast.allocator.reuse_freed_memory`): search allocates and frees the
        same large buffers every step, and decoding ran about 15% faster for it.
        """
        reuse_freed_memory()
        torch_device = resolve_device(device, "--device")
        if quantize not in ("none", "int8"):
            raise Seq2SeqError(f"quantize: got {quantize!r}; use none or int8")
        if quantize == "int8" and torch_device.type != "cpu":
            raise Seq2SeqError(f"quantize: int8 runs on the CPU only, not on {torch_device}; use device cpu")
        bundle = load_bundle(resolve_bundle_path(path_or_uri), torch_device)
        if quantize == "int8":
            bundle = replace(bundle, model=quantize_int8(bundle.model))
        return cls(bundle, torch_device, SearchSettings(**settings))  # type: ignore[arg-type]

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
        src_tok, tgt_tok = self.bundle.src_tokenizer, self.bundle.tgt_tokenizer
        ids = src_tok.encode(texts)
        for n, seq in enumerate(ids):
            if len(seq) > MAX_SOURCE_TOKENS:
                print(f"warning: sentence {n + 1} has {len(seq)} subword tokens; only the first "
                      f"{MAX_SOURCE_TOKENS} are translated", file=sys.stderr)
                ids[n] = seq[:MAX_SOURCE_TOKENS]
        non_empty = [i for i, t in enumerate(texts) if t]
        hyps = translate_ids(self.bundle.model, [ids[i] for i in non_empty], settings, self.device)
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


def quantize_int8(model: Seq2Seq) -> Seq2Seq:
    """Dynamic int8 quantization (weights int8, activations quantized on the fly) of every
    nn.Linear, nn.LSTM and nn.GRU; embeddings stay float, and so does Bahdanau attention's
    energy vector (a matrix-vector product over every source position, where quantizing the
    activations costs more than it saves). An LSTM step with input feeding gets one product
    over [feed; h] (:meth:`~seq2seq.model.recurrence.StepRecurrence.fuse_feed_and_hidden`). The
    model given is left as it is."""
    import copy
    import warnings

    from torch.ao.quantization import default_dynamic_qconfig

    model = copy.deepcopy(model)
    if model.decoder.recurrence is not None:
        model.decoder.recurrence.fuse_feed_and_hidden()
    kinds = (torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU)
    spec = {name: default_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, kinds) and not name.endswith("attention.energy")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        quantized = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
    return quantized.eval()


def resolve_bundle_path(path_or_uri: str | Path) -> Path:
    """A bundle folder as given, or the bundle inside an MLflow model downloaded from its URI."""
    text = str(path_or_uri)
    if Path(text).exists() or ":/" not in text:
        return Path(text)
    import mlflow

    from ..tracking.store import configure_tracking

    configure_tracking()
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    except Exception as err:  # MLflow raises several types for unknown runs/models
        raise ModelBundleError(f"{text}: cannot fetch this MLflow model ({str(err).splitlines()[0]})") from None
    found = sorted(p.parent for p in local.rglob(CONFIG_FILE) if (p.parent / "weights.pt").exists())
    if not found:
        raise ModelBundleError(f"{text}: the MLflow model holds no seq2seq bundle")
    return found[0]
