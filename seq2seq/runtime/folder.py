"""An exported model's folder: its file names and ``export.json``, read and checked without torch.

``seq2seq export --format onnx`` writes (:mod:`seq2seq.export.onnx_export`):

* ``encoder.onnx``: source ids [B, S] and lengths [B] -> the decoder's initial state and the
  attention memory (the bridge and the keys and values the memory projects once);
* ``decoder_step.onnx``: one step: previous tokens [R, 1], the state, the memory ->
  log-probabilities [R, V], the next state and (with attention) the step's weights [R, S];
* ``src.spm.model``, ``tgt.spm.model``: the SentencePiece models;
* ``export.json``: what the graphs take and give (the names of the state and memory tensors),
  the model config, the precision (fp32 or int8), checksums and where the model came from.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.atomic import sha256_file
from ..core.errors import ModelBundleError

EXPORT_FILE = "export.json"
ENCODER_FILE = "encoder.onnx"
STEP_FILE = "decoder_step.onnx"
SRC_SPM = "src.spm.model"
TGT_SPM = "tgt.spm.model"
FILES = (ENCODER_FILE, STEP_FILE, SRC_SPM, TGT_SPM)
FORMAT = "seq2seq-onnx"
FORMAT_VERSION = 1
REDO = "export it again (seq2seq export --format onnx)"

# export.json's fields and their types
FIELD_TYPES: dict[str, type] = {
    "format": str, "format_version": int, "precision": str, "model": dict, "src_vocab_size": int,
    "tgt_vocab_size": int, "state": list, "memory": list, "attention": bool, "sha256": dict,
}


def is_export_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``seq2seq export`` (it holds ``export.json``)."""
    return (Path(path) / EXPORT_FILE).is_file()


def load_export_info(path: str | Path, verify: bool = True) -> dict[str, Any]:
    """``export.json`` of an exported folder, checked: its shape, and (``verify``) that every file is
    there with its checksum. Anything wrong is a one-line :class:`ModelBundleError` naming the file."""
    folder = Path(path)
    info_path = folder / EXPORT_FILE
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelBundleError(f"{info_path}: unreadable ({str(err)[:80]}); {REDO}") from None
    if not isinstance(info, dict):
        raise ModelBundleError(f"{info_path}: holds a JSON {type(info).__name__}, not an object; {REDO}")
    for name, kind in FIELD_TYPES.items():
        if name not in info:
            raise ModelBundleError(f"{info_path}: {name} is missing; {REDO}")
        value = info[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelBundleError(f"{info_path}: {name} is {json.dumps(value)[:60]}, not a {kind.__name__}; {REDO}")
    if info["format"] != FORMAT:
        raise ModelBundleError(f"{info_path}: format is {info['format']!r}, not {FORMAT!r}; {REDO}")
    if info["format_version"] > FORMAT_VERSION:
        raise ModelBundleError(f"{info_path}: format_version {info['format_version']} is newer than this seq2seq "
                               f"reads (<= {FORMAT_VERSION}); upgrade seq2seq")
    if info["precision"] not in ("fp32", "int8"):
        raise ModelBundleError(f"{info_path}: precision is {info['precision']!r}, not fp32 or int8; {REDO}")
    if not all(isinstance(n, str) for n in info["state"] + info["memory"]):
        raise ModelBundleError(f"{info_path}: state and memory must list tensor names; {REDO}")
    if verify:
        for name in FILES:
            file = folder / name
            if not file.is_file():
                raise ModelBundleError(f"{file}: missing from the exported model; {REDO}")
            expected = info["sha256"].get(name)
            if not isinstance(expected, str) or sha256_file(file) != expected:
                raise ModelBundleError(f"{file}: checksum does not match {EXPORT_FILE}: the folder is corrupt or "
                                       f"mixed; {REDO}")
    return info
