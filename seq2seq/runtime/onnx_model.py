"""The exported encoder and decoder step under ONNX Runtime, with NumPy arrays in and out.

The state and the memory are dicts of arrays named as in ``export.json``: the state's ``h``
(and ``c``) are [L, R, H] and ``feed`` (input feeding) [R, H]; every memory tensor is
[N, S, ...] with N source sentences. A step may run K = R / N rows per sentence (beam
search's beams read one copy of their sentence's memory, as in the PyTorch search).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ModelBundleError, Seq2SeqError
from .folder import ENCODER_FILE, EXPORT_FILE, REDO, STEP_FILE

Arrays = dict[str, np.ndarray]


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise Seq2SeqError("onnxruntime is not installed: pip install \"seq2seq[onnx]\" (or pip install "
                           "onnxruntime) to run an exported model") from None
    return onnxruntime


class OnnxModel:
    """``encode`` and ``step`` of an exported model (the graphs of one folder)."""

    def __init__(self, folder: Path, info: dict[str, Any], threads: int = 0) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's choice (one per core)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.encoder = _session(ort, folder / ENCODER_FILE, options)
        self.decoder_step = _session(ort, folder / STEP_FILE, options)
        self.encoder_file, self.step_file = folder / ENCODER_FILE, folder / STEP_FILE
        self.state_names: list[str] = list(info["state"])
        self.memory_names: list[str] = list(info["memory"])
        self.has_attention: bool = info["attention"]

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple[Arrays, Arrays]:
        """src: [B, S] int64 ids (with </s>, padded); lengths: [B]. Returns (memory, initial state)."""
        outputs = _run(self.encoder, self.encoder_file, {"src": src, "src_lengths": lengths})
        named = dict(zip(self.state_names + self.memory_names, outputs))  # then unused extras (see export)
        return {n: named[n] for n in self.memory_names}, {n: named[n] for n in self.state_names}

    def step(self, tokens: np.ndarray, state: Arrays, memory: Arrays) -> tuple[np.ndarray, Arrays, np.ndarray | None]:
        """tokens: [R] int64. Returns log-probabilities [R, V] (float32), the next state and the
        attention weights [R, S] (None without attention)."""
        feeds = {"tokens": tokens.reshape(-1, 1), **state, **memory}
        outputs = _run(self.decoder_step, self.step_file, feeds)
        log_probs, rest = outputs[0], outputs[1:]
        next_state = dict(zip(self.state_names, rest[:len(self.state_names)]))
        weights = rest[len(self.state_names)] if self.has_attention else None
        return log_probs, next_state, weights


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:120]


def _session(ort: Any, path: Path, options: Any) -> Any:
    """An ONNX Runtime session of one graph; a file it cannot load is a one-line error."""
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise ModelBundleError(f"{path}: ONNX Runtime cannot load it ({_first_line(err)}); {REDO}") from None


def _run(session: Any, path: Path, feeds: Arrays) -> list[np.ndarray]:
    """One run of a graph; a graph that does not take what export.json says is a one-line error."""
    try:
        return session.run(None, feeds)
    except Exception as err:  # a graph of another model, or one whose inputs do not match export.json
        raise ModelBundleError(f"{path}: ONNX Runtime cannot run it on this model's inputs ({_first_line(err)}); "
                               f"the graphs do not match {EXPORT_FILE}: {REDO}") from None


def select_state(state: Arrays, rows: np.ndarray) -> Arrays:
    """Rows ``rows`` of a state (h and c hold rows on axis 1, feed on axis 0)."""
    return {name: x[:, rows] if x.ndim == 3 else x[rows] for name, x in state.items()}


def select_memory(memory: Arrays, entries: np.ndarray) -> Arrays:
    return {name: x[entries] for name, x in memory.items()}
