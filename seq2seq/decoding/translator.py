"""Translate text with a trained model: ``Translator.load(path_or_uri).translate([...])``."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..bundle.bundle import Bundle, load_bundle
from ..core.devices import resolve_device
from ..core.errors import Seq2SeqError
from ..fast.variants import Int8Seq2Seq, as_variant
from ..fast.allocator import reuse_freed_memory
from ..model.seq2seq import Seq2Seq
from ..runtime.text import TextTranslator, Translation, nbest_table
from .load import load_translator
from ..search.settings import SearchSettings
from ..search.forced import Scored
from .torch_backend import Hypothesis, TorchBackend

__all__ = ["Translation", "Translator", "nbest_table", "quantize_int8"]


class Translator(TextTranslator):
    """A loaded bundle plus search settings (the text API: :class:`~.text.TextTranslator`); an
    ensemble of bundles searches with all their models (:func:`~seq2seq.runtime.text.ensemble`)."""

    def __init__(self, bundle: Bundle, device: torch.device, settings: SearchSettings | None = None) -> None:
        self.bundle = bundle
        self.src_tokenizer, self.tgt_tokenizer = bundle.src_tokenizer, bundle.tgt_tokenizer
        self.device = device
        self.settings = settings or SearchSettings()
        self.models: list[Seq2Seq] = [bundle.model]

    @classmethod
    def load(cls, path_or_uri: str | Path | list, device: str = "auto", quantize: str = "none",
             **settings: object) -> TextTranslator:
        """Load from a bundle folder, or from an MLflow model URI (``runs:/ID/model``, ``models:/NAME/1``);
        a list of them: an ensemble (``weights=[...]``, one per model, equal without).
        An exported folder (``seq2seq export``) gives its own translator,
        :class:`~seq2seq.runtime.translator.OnnxTranslator`, with the same API
        (:func:`~seq2seq.decoding.load.load_translator`)."""
        return load_translator(path_or_uri, device=device, quantize=quantize, **settings)

    @classmethod
    def from_bundle(cls, folder: Path, device: str = "auto", quantize: str = "none",
                    **settings: object) -> "Translator":
        """A trained bundle's translator.

        ``quantize="int8"``: dynamic int8 quantization of the linear and recurrent layers
        (CPU only): faster decoding, scores slightly different from the float model's.
        Like training, this keeps freed heap memory in the process for reuse
        (:func:`seq2seq.fast.allocator.reuse_freed_memory`): search allocates and frees the
        same large buffers every step, and decoding ran about 15% faster for it.
        """
        reuse_freed_memory()
        # int8 runs on the CPU only, so there "auto" can only mean the CPU
        torch_device = resolve_device("cpu" if quantize == "int8" and device == "auto" else device, "--device")
        if quantize not in ("none", "int8"):
            raise Seq2SeqError(f"quantize: got {quantize!r}; use none or int8")
        if quantize == "int8" and torch_device.type != "cpu":
            raise Seq2SeqError(f"quantize: int8 runs on the CPU only, not on {torch_device}; use device cpu")
        bundle = load_bundle(folder, torch_device)
        if quantize == "int8":
            bundle = replace(bundle, model=quantize_int8(bundle.model))
        return cls(bundle, torch_device, SearchSettings(**settings))  # type: ignore[arg-type]

    def backend_of(self, model: Seq2Seq) -> TorchBackend:
        return TorchBackend(model, self.device)

    @torch.inference_mode()
    def search_ids(self, sources: list[list[int]], settings: SearchSettings) -> list[list[Hypothesis]]:
        return super().search_ids(sources, settings)

    @torch.inference_mode()
    def score_ids(self, sources: list[list[int]], targets: list[list[int]], settings: SearchSettings
                  ) -> list[Scored]:
        return super().score_ids(sources, targets, settings)


def quantize_int8(model: Seq2Seq, variant: type[Seq2Seq] = Int8Seq2Seq) -> Seq2Seq:
    """Dynamic int8 quantization (weights int8, activations quantized on the fly) of every
    nn.Linear, nn.LSTM and nn.GRU; embeddings stay float, and so does Bahdanau attention's
    energy vector (a matrix-vector product over every source position, where quantizing the
    activations costs more than it saves). It quantizes ``variant`` (the int8 one,
    :class:`~seq2seq.fast.variants.Int8Seq2Seq`: an LSTM step with input feeding makes one
    product over [feed; h]) holding ``model``'s weights; the model given is left as it is."""
    import warnings

    from torch.ao.quantization import default_dynamic_qconfig

    model = as_variant(model, variant)
    kinds = (torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU)
    spec = {name: default_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, kinds) and not name.endswith("attention.energy")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        quantized = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
    return quantized.eval()
