"""The model bundle: one folder with everything needed to translate.

``config.json`` (format version, model config, vocabulary sizes, languages, the
MLflow run that made it, checksums), ``weights.pt`` (a plain state dict, loaded
with ``torch.load(weights_only=True)``: no pickle of arbitrary objects), and the
two SentencePiece models ``src.spm.model`` and ``tgt.spm.model``. Tokenizers travel
with the weights, so a model can never be used with the wrong vocabulary.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import atomic_dir
from ..core.errors import ModelBundleError, Seq2SeqError
from ..data.subwords import Tokenizer
from ..fast import build_model
from ..model.seq2seq import Seq2Seq
from ..params.config import ModelConfig, model_config_from_dict
from .files import (
    CONFIG_FILE,
    FORMAT_VERSION,
    RESTORE,
    SRC_SPM,
    TGT_SPM,
    WEIGHTS_FILE,
    file_sha256,
    load_bundle_info,
)


@dataclass
class Bundle:
    model: Seq2Seq
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    info: dict[str, Any]  # config.json as loaded


def save_bundle(
    path: str | Path, model: Seq2Seq, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, extra: dict[str, Any],
) -> None:
    """Write the bundle folder atomically (``extra`` goes into config.json)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_dir(path) as tmp:
        torch.save(state, tmp / WEIGHTS_FILE)
        (tmp / SRC_SPM).write_bytes(src_tokenizer.proto)
        (tmp / TGT_SPM).write_bytes(tgt_tokenizer.proto)
        info = {
            "format_version": FORMAT_VERSION,
            "model": asdict(model.config),
            "src_vocab_size": model.src_vocab_size,
            "tgt_vocab_size": model.tgt_vocab_size,
            "sha256": {name: file_sha256(tmp / name) for name in (WEIGHTS_FILE, SRC_SPM, TGT_SPM)},
            **extra,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def load_bundle(path: str | Path, device: torch.device | str | None = "cpu", fast: bool = True) -> Bundle:
    """Load and check a bundle; any inconsistency is a :class:`ModelBundleError` naming the file.
    ``fast``: the variant for ``device`` (:func:`seq2seq.fast.build_model`; device None: the one
    for exported graphs, on the CPU); without, the reference model
    (:class:`~seq2seq.model.seq2seq.Seq2Seq`)."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    info = load_bundle_info(path)
    version = info["format_version"]  # an integer: load_bundle_info checked the shape
    if version > FORMAT_VERSION:
        raise ModelBundleError(
            f"{config_path}: format_version {version!r} is not supported by this seq2seq (reads <= {FORMAT_VERSION}); "
            "upgrade seq2seq"
        )
    for name in (WEIGHTS_FILE, SRC_SPM, TGT_SPM):
        file = path / name
        if not file.is_file():
            raise ModelBundleError(f"{file}: missing from the bundle; {RESTORE}")
        expected = info.get("sha256", {}).get(name)
        if expected and file_sha256(file) != expected:
            raise ModelBundleError(f"{file}: checksum does not match {CONFIG_FILE}: the bundle is corrupt or mixed; "
                                   f"{RESTORE}")
    try:
        model_config: ModelConfig = model_config_from_dict(info.get("model"), str(config_path))
    except Seq2SeqError as err:
        raise ModelBundleError(str(err)) from None
    src_tok = Tokenizer.load(path / SRC_SPM, RESTORE)
    tgt_tok = Tokenizer.load(path / TGT_SPM, RESTORE)
    if (src_tok.vocab_size, tgt_tok.vocab_size) != (info.get("src_vocab_size"), info.get("tgt_vocab_size")):
        raise ModelBundleError(
            f"{path}: tokenizer vocabularies ({src_tok.vocab_size}, {tgt_tok.vocab_size}) do not match the model's "
            f"({info.get('src_vocab_size')}, {info.get('tgt_vocab_size')})"
        )
    model = (build_model(model_config, src_tok.vocab_size, tgt_tok.vocab_size, device) if fast
             else Seq2Seq(model_config, src_tok.vocab_size, tgt_tok.vocab_size))
    try:
        state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ModelBundleError(f"{path / WEIGHTS_FILE}: unreadable weights ({type(err).__name__}): the bundle is "
                               f"corrupt; {RESTORE}") from None
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as err:
        first = str(err).strip().splitlines()
        raise ModelBundleError(
            f"{path / WEIGHTS_FILE}: weights do not match {CONFIG_FILE} ({first[1].strip() if len(first) > 1 else first[0]})"
        ) from None
    model.to(device or "cpu").eval()
    return Bundle(model, src_tok, tgt_tok, info)
