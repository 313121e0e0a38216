"""Translate text with an exported model, without torch: ``OnnxTranslator.load(DIR).translate([...])``.

The same text API as the PyTorch translator (:class:`seq2seq.runtime.text.TextTranslator`);
``Translator.load(DIR)`` and ``seq2seq translate --model DIR`` come here for an exported folder.
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ModelBundleError, Seq2SeqError
from ..data.subwords import Tokenizer
from ..search.settings import SearchSettings
from .folder import REDO, SRC_SPM, TGT_SPM, load_export_info
from .numpy_backend import OnnxBackend
from .onnx_model import OnnxModel
from .text import TextTranslator


class OnnxTranslator(TextTranslator):
    """An exported folder's graphs and tokenizers plus search settings."""

    def __init__(self, model: OnnxModel, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, info: dict,
                 settings: SearchSettings | None = None) -> None:
        self.model = model
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.info = info
        self.settings = settings or SearchSettings()
        self.models: list[OnnxModel] = [model]

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", quantize: str = "none", threads: int = 0,
             **settings: object) -> "OnnxTranslator":
        """Load an exported folder. It runs on the CPU (``device`` auto or cpu); its precision was
        chosen at export (``seq2seq export --quantize int8``), so ``quantize`` must stay none.
        ``threads``: ONNX Runtime's threads (0: one per core)."""
        folder = Path(path)
        if device not in ("auto", "cpu"):
            raise Seq2SeqError(f"--device: got {device!r}; an exported model runs on the CPU: use auto or cpu")
        if quantize != "none":
            raise Seq2SeqError(f"--quantize: got {quantize!r}; {folder} is already an exported model (quantize it "
                               "when exporting: seq2seq export --quantize int8)")
        info = load_export_info(folder)
        src_tok = Tokenizer.load(folder / SRC_SPM, REDO)
        tgt_tok = Tokenizer.load(folder / TGT_SPM, REDO)
        if (src_tok.vocab_size, tgt_tok.vocab_size) != (info["src_vocab_size"], info["tgt_vocab_size"]):
            raise ModelBundleError(f"{folder}: tokenizer vocabularies ({src_tok.vocab_size}, {tgt_tok.vocab_size}) do "
                                   f"not match the model's ({info['src_vocab_size']}, {info['tgt_vocab_size']})")
        return cls(OnnxModel(folder, info, threads), src_tok, tgt_tok, info,
                   SearchSettings(**settings))  # type: ignore[arg-type]

    def backend_of(self, model: OnnxModel) -> OnnxBackend:
        return OnnxBackend(model)
