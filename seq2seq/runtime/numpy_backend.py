"""The search's backend for an exported model: ONNX Runtime runs the graphs, arrays are NumPy's.

The search is :mod:`seq2seq.search.algorithms`, the same code the PyTorch model runs; outputs
equal the PyTorch model's up to float rounding (and the order of exact ties). Sampling draws from
NumPy's generator, so its samples differ from the PyTorch model's for the same seed.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.token_ids import EOS_ID, PAD_ID
from ..search import algorithms
from .onnx_model import Arrays, OnnxModel, select_memory, select_state


def source_array(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Sources as the encoder takes them: ids + </s>, padded with <pad>; and their lengths."""
    lengths = np.array([len(s) + 1 for s in seqs], dtype=np.int64)
    src = np.full((len(seqs), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        src[row, :len(seq)] = seq
        src[row, len(seq)] = EOS_ID
    return src, lengths


def sampler(temperature: float, top_k: int, top_p: float, rng: np.random.Generator) -> algorithms.Chooser:
    """Draw from softmax(log_probs / temperature), cut to the top_k tokens (0: all) and to the
    smallest set whose probability reaches top_p (1.0: all), as the PyTorch sampler does."""

    def choose(log_probs: np.ndarray) -> np.ndarray:
        scaled = log_probs.astype(np.float64) / temperature
        if 0 < top_k < scaled.shape[-1]:
            kth = -np.partition(-scaled, top_k - 1, axis=-1)[:, top_k - 1:top_k]
            scaled = np.where(scaled < kth, -np.inf, scaled)
        probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        if top_p < 1.0:
            order = np.argsort(-probs, axis=-1, kind="stable")
            ordered = np.take_along_axis(probs, order, axis=-1)
            outside = ordered.cumsum(axis=-1) - ordered >= top_p
            np.put_along_axis(probs, order, np.where(outside, 0.0, ordered), axis=-1)
            probs /= probs.sum(axis=-1, keepdims=True)
        cumulative = probs.cumsum(axis=-1)
        draws = rng.random((probs.shape[0], 1)) * cumulative[:, -1:]
        return np.minimum((cumulative <= draws).sum(axis=-1), probs.shape[-1] - 1)

    return choose


def row_top(values: np.ndarray, k: int, chunk: int = 64) -> np.ndarray:
    """The indices of the k largest values of each row (in no particular order).

    ``np.argpartition`` over a whole large vocabulary row is slow, so (as the PyTorch backend's
    ``row_top`` does) the row is cut into chunks: the k largest values lie in the k chunks with
    the highest maxima, and only those k * chunk values are partitioned."""
    rows, vocab = values.shape
    if k >= vocab:
        return np.broadcast_to(np.arange(vocab), values.shape)
    if vocab < 4 * chunk or k * chunk >= vocab:
        return np.argpartition(-values, k - 1, axis=-1)[:, :k]
    whole = vocab - vocab % chunk  # the last vocab % chunk columns join the candidates as they are
    chunks = values[:, :whole].reshape(rows, -1, chunk)
    best_chunks = np.argpartition(-chunks.max(axis=-1), k - 1, axis=-1)[:, :k]  # [rows, k]
    columns = (best_chunks[:, :, None] * chunk + np.arange(chunk)).reshape(rows, k * chunk)
    columns = np.concatenate([columns, np.broadcast_to(np.arange(whole, vocab), (rows, vocab - whole))], axis=1)
    picked = np.take_along_axis(values, columns, axis=-1)
    return np.take_along_axis(columns, np.argpartition(-picked, k - 1, axis=-1)[:, :k], axis=-1)


class OnnxBackend:
    """An exported model under ONNX Runtime: a step's scores are log-probabilities."""

    free_reads = True

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.has_attention = model.has_attention

    # --- the model ---
    def sources(self, seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        return source_array(seqs)

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple[Arrays, Arrays]:
        return self.model.encode(src, lengths)

    def step(self, tokens: np.ndarray, state: Arrays, memory: Arrays) -> tuple[np.ndarray, Arrays, Any]:
        return self.model.step(tokens, state, memory)

    def select_state(self, state: Arrays, index: np.ndarray) -> Arrays:
        return select_state(state, index)

    def select_memory(self, memory: Arrays, index: np.ndarray) -> Arrays:
        return select_memory(memory, index)

    def log_probs(self, scores: np.ndarray) -> np.ndarray:
        return scores

    def best_tokens(self, scores: np.ndarray, k: int) -> np.ndarray:
        return row_top(scores, k)

    def most_likely(self, scores: np.ndarray) -> np.ndarray:
        return scores.argmax(axis=-1)

    def log_probs_at(self, scores: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return np.take_along_axis(scores, tokens, axis=-1)

    def sampler(self, temperature: float, top_k: int, top_p: float, generator: np.random.Generator) -> Any:
        return sampler(temperature, top_k, top_p, generator)

    def generator(self, seed: int) -> np.random.Generator:
        return np.random.default_rng(seed)

    # --- arrays ---
    def array(self, values: Any, dtype: str) -> np.ndarray:
        return np.asarray(values, dtype=dtype)

    def full(self, shape: tuple[int, ...], value: float, dtype: str) -> np.ndarray:
        return np.full(shape, value, dtype=dtype)

    def arange(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def concat(self, arrays: Sequence[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(arrays, axis=axis)

    def as_float64(self, a: np.ndarray) -> np.ndarray:
        return a.astype(np.float64)

    def isfinite(self, a: np.ndarray) -> np.ndarray:
        return np.isfinite(a)

    def masked_fill(self, a: np.ndarray, mask: np.ndarray, value: float) -> np.ndarray:
        return np.where(mask, a.dtype.type(value), a)

    def pick(self, a: np.ndarray, index: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, index.reshape(*index.shape, *[1] * (a.ndim - 2)), axis=1)

    def topk(self, a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        index = np.argsort(-a, axis=-1, kind="stable")[:, :k]
        return np.take_along_axis(a, index, axis=-1), index

    def order_desc(self, a: np.ndarray) -> np.ndarray:
        return np.argsort(-a, axis=1, kind="stable")

    def host(self, a: np.ndarray) -> np.ndarray:
        return a

    def rows_of(self, going: np.ndarray) -> np.ndarray:
        return np.flatnonzero(going)

