"""Load whichever translator a model needs: ``load_translator(path_or_uri)``.

A trained bundle gets the PyTorch translator (:class:`~seq2seq.decoding.translator.Translator`), an
exported folder the torch-free one (:class:`~seq2seq.runtime.translator.OnnxTranslator`); both have
the text API of :class:`~seq2seq.runtime.text.TextTranslator`. No torch is imported here unless the
model is a trained bundle, so an exported model loads where torch is not installed.
"""
from __future__ import annotations

from pathlib import Path

from ..bundle.locate import locate_model, model_kind
from ..core.errors import Seq2SeqError
from ..runtime.text import TextTranslator, ensemble


def needs_torch(err: ImportError, what: str) -> Seq2SeqError | None:
    """The one-line error for ``what`` where torch cannot be imported (None for another import)."""
    if (err.name or "").split(".")[0] != "torch":
        return None
    return Seq2SeqError(f"{what} needs PyTorch, which is not installed here: install torch (pip install torch), "
                        "or export the model where torch is (seq2seq export --model DIR --out EXPORTED) and "
                        "translate the export here (seq2seq translate --model EXPORTED)")


def load_translator(path_or_uri: str | Path | list, device: str = "auto", quantize: str = "none",
                    flag: str = "model", weights: list[float] | None = None, **settings: object) -> TextTranslator:
    """The translator of a model folder or an MLflow model URI (``runs:/ID/model``, ``models:/NAME/1``),
    with search ``settings`` (keywords of :class:`~seq2seq.search.settings.SearchSettings`). ``flag``:
    how errors name the model (``--model`` on the command line). A list of several: an ensemble of them
    (all trained bundles or all exported folders, sharing their tokenizers), each step scoring a token
    by the mean of their log-probabilities weighted by ``weights`` (one per model, equal without)."""
    models = path_or_uri if isinstance(path_or_uri, list) else [path_or_uri]
    if weights is not None and len(models) == 1:
        raise Seq2SeqError("--weights: weights are for an ensemble; give --model more than once")
    translators = [load_one(one, device, quantize, flag, settings) for one in models]
    if len(translators) == 1:
        return translators[0]
    return ensemble(translators, [f"{flag} {one}" for one in models], weights)


def load_one(path_or_uri: str | Path, device: str, quantize: str, flag: str, settings: dict) -> TextTranslator:
    folder = locate_model(path_or_uri)
    if model_kind(folder, path_or_uri, flag) == "export":
        from ..runtime.translator import OnnxTranslator

        return OnnxTranslator.load(folder, device=device, quantize=quantize, **settings)
    try:
        from .translator import Translator
    except ImportError as err:
        raise needs_torch(err, f"{flag} {path_or_uri} is a trained PyTorch model: translating it") or err
    return Translator.from_bundle(folder, device=device, quantize=quantize, **settings)
