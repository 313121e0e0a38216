"""What a search needs from whatever runs the model: the interface a backend fills in.

The search (:mod:`.algorithms`) is written once over this interface. Two backends fill it in:
the PyTorch model's (:class:`seq2seq.decoding.torch_backend.TorchBackend`, arrays are tensors on
the model's device) and the exported model's (:class:`seq2seq.runtime.numpy_backend.OnnxBackend`,
ONNX Runtime runs the graphs and arrays are NumPy's).

A backend does two kinds of thing. For the model: encode a batch of sources, run one decoder
step, keep some rows of the decoder state and of the memory, and read a step's output (its best
tokens, their log-probabilities, a sampled token). For the arrays the search keeps: make them,
join them, pick along them, rank them and bring a small one to the host. Arrays of both backends
also share NumPy's operators and indexing (``a[rows]``, ``a[:, 0]``, ``a + b``, ``a == 3``,
``~a & b``, ``a.reshape(...)``, ``a.shape``, ``a.tolist()``), which the search uses directly.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

Array = Any  # a torch tensor or a NumPy array, depending on the backend
Host = Any  # an array on the host: a CPU torch tensor or a NumPy array (``tolist``, ``any``, ``all``)


class Backend(Protocol):
    """One model to search with, and the array operations its search needs."""

    has_attention: bool  # the model has attention, so a step gives its weights over the source
    free_reads: bool  # reading a value costs no wait (a CPU): the search may skip work it sees is not needed

    # --- the model ---
    def sources(self, seqs: Sequence[Sequence[int]]) -> tuple[Array, Host]:
        """Sources (ids without </s>) as the encoder takes them: ids + </s>, padded; and their lengths."""

    def encode(self, src: Array, lengths: Host) -> tuple[Any, Any]:
        """The memory (encoder outputs) and the first decoder state, one row per source."""

    def step(self, tokens: Array, state: Any, memory: Any) -> tuple[Array, Any, Array | None]:
        """One decoder step for each row: ``tokens`` [N] in; the step's scores [N, V] (whatever the
        model gives: logits or log-probabilities, read by :meth:`best_tokens` and :meth:`log_probs_at`),
        the new state, and the attention weights [N, S] (None without attention)."""

    def select_state(self, state: Any, index: Array) -> Any:
        """The rows ``index`` [M] of the decoder state, in that order (rows may repeat)."""

    def select_memory(self, memory: Any, index: Array) -> Any:
        """The entries ``index`` [M] of the memory."""

    def log_probs(self, scores: Array) -> Array:
        """A step's scores [N, V] as log-probabilities [N, V] (float32)."""

    def best_tokens(self, scores: Array, k: int) -> Array:
        """The ids [N, k] of each row's k best tokens (in an order of the backend's)."""

    def most_likely(self, scores: Array) -> Array:
        """Each row's best token [N]."""

    def log_probs_at(self, scores: Array, tokens: Array) -> Array:
        """The log-probabilities [N, k] (float32) of ``tokens`` [N, k] under each row's distribution."""

    def sampler(self, temperature: float, top_k: int, top_p: float, generator: Any) -> Any:
        """A function scores [N, V] -> token [N] drawn from softmax(scores / temperature), cut to the
        ``top_k`` most likely (0: all) and to the smallest set of probability ``top_p`` (1.0: all)."""

    def generator(self, seed: int) -> Any:
        """A random generator for :meth:`sampler`, seeded."""

    # --- arrays ---
    def array(self, values: Any, dtype: str) -> Array:
        """``values`` (a list or NumPy array on the host) as an array of the search, of ``dtype``
        (``"int64"``, ``"float32"``, ``"float64"`` or ``"bool"``)."""

    def full(self, shape: tuple[int, ...], value: float, dtype: str) -> Array: ...

    def arange(self, n: int) -> Array:
        """0, 1, ..., n - 1 (int64)."""

    def concat(self, arrays: Sequence[Array], axis: int) -> Array: ...

    def as_float64(self, a: Array) -> Array: ...

    def isfinite(self, a: Array) -> Array: ...

    def masked_fill(self, a: Array, mask: Array, value: float) -> Array:
        """``a`` with ``value`` where ``mask`` holds, of ``a``'s dtype."""

    def pick(self, a: Array, index: Array) -> Array:
        """``out[i, j, ...] = a[i, index[i, j], ...]``: along the second axis, per row of the first."""

    def topk(self, a: Array, k: int) -> tuple[Array, Array]:
        """The ``k`` largest values of each row and their positions, best first."""

    def order_desc(self, a: Array) -> Array:
        """The positions that sort each row, largest first; equal values keep their order."""

    def host(self, a: Array) -> Host:
        """``a`` on the host: where the host waits for the device. A search calls it once per step."""

    def rows_of(self, going: Host) -> Array:
        """The positions where the host array ``going`` holds, as an index array of the search."""
