"""Encoded splits: the sentence pairs as token ids, flat on disk and read a sentence at a time.

A split is a folder of four ``.npy`` arrays: ``src_ids`` and ``tgt_ids`` (int32, every sentence's
ids one after another, without ``<s>``/``</s>``) and ``src_offsets``, ``tgt_offsets`` (int64,
sentence ``i`` is ``ids[offsets[i]:offsets[i + 1]]``). :class:`SplitWriter` appends to them chunk by
chunk (the length goes into each header when it closes). :func:`load_encoded` memory-maps the
offsets (8 bytes a sentence) and leaves the ids on disk (:class:`IdsOnDisk`: a sentence's ids are
read when a batch needs them), so a split of tens of millions of pairs costs neither the memory
nor the time of reading it, and no Python object is made per sentence. (Mapped ids would do
too, but every page a random batch touches, and the kernel's read-ahead around it, would stay
in the training process's resident memory: the whole file within an epoch.)
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..core.atomic import atomic_dir
from ..core.errors import DataError

ARRAYS = ("src_ids", "src_offsets", "tgt_ids", "tgt_offsets")
_MAGIC = b"\x93NUMPY\x01\x00"
_HEADER_BYTES = 128  # fixed, so the final length fits in the header written first


class IdsOnDisk:
    """A 1-D array in an ``.npy`` file, read a slice at a time (``ids[a:b]`` is an ndarray read from
    the file then); its pages stay in the system's file cache, not in this process's memory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, self.dtype = read_header(fh)
            self._start = fh.tell()
        if len(shape) != 1 or fortran or self.dtype.hasobject:
            raise ValueError(f"not a 1-D array of numbers: shape {shape}")
        self.shape, self.ndim = shape, 1
        self._fd = os.open(self.path, os.O_RDONLY)
        if os.fstat(self._fd).st_size < self._start + shape[0] * self.dtype.itemsize:
            raise ValueError(f"cut short: its header says {shape[0]:,} values")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice):
            raise TypeError("ids on disk are read by slices")
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("a slice of ids on disk must be contiguous")
        size = self.dtype.itemsize
        count = max(stop - start, 0)
        data = os.pread(self._fd, count * size, self._start + start * size)
        if len(data) != count * size:
            raise OSError(f"{self.path}: cut short (ids {start}-{stop} of {len(self)} asked for)")
        return np.frombuffer(data, dtype=self.dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


class Sequences:
    """Token id sequences stored flat: sequence ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""

    def __init__(self, ids: "np.ndarray | IdsOnDisk", offsets: np.ndarray) -> None:
        self.ids, self.offsets = ids, offsets

    @classmethod
    def of(cls, seqs: "Sequence[Sequence[int]] | Sequences") -> "Sequences":
        """``seqs`` as flat arrays (itself if it already is)."""
        if isinstance(seqs, Sequences):
            return seqs
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(offsets[-1]))
        return cls(ids, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("a slice of sequences must be contiguous")
            return Sequences(self.ids, self.offsets[start:max(stop, start) + 1])
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sequence {index} of {len(self)}")
        return self.ids[self.offsets[index]:self.offsets[index + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def compact(self) -> "Sequences":
        """The same sequences with only their own ids, offsets from 0 (a slice shares its parent's ids)."""
        start, end = int(self.offsets[0]), int(self.offsets[-1])
        return Sequences(self.ids[start:end], self.offsets - start)

    def lengths_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The lengths of the sequences ``indices`` (from the offsets: no ids read)."""
        indices = np.asarray(indices, dtype=np.int64)
        return self.offsets[indices + 1] - self.offsets[indices]

    @property
    def lengths(self) -> np.ndarray:
        """Each sequence's length (int32), without a Python object per sequence (nor a whole int64 copy)."""
        lengths = np.empty(len(self), dtype=np.int32)
        np.subtract(self.offsets[1:], self.offsets[:-1], out=lengths, casting="unsafe")
        return lengths


@dataclass
class EncodedSplit:
    """A split as token ids: ``src[i]`` and ``tgt[i]`` are int32 arrays without bos/eos. Lists of
    sequences given here are stored flat (:class:`Sequences`)."""

    src: Sequences
    tgt: Sequences

    def __post_init__(self) -> None:
        self.src, self.tgt = Sequences.of(self.src), Sequences.of(self.tgt)
        if len(self.src) != len(self.tgt):
            raise ValueError(f"{len(self.src)} sources but {len(self.tgt)} targets")

    def __len__(self) -> int:
        return len(self.src)


def _header(dtype: np.dtype, count: int) -> bytes:
    """An ``.npy`` (version 1.0) header of a 1-D array, always ``_HEADER_BYTES`` long."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (count,)})
    body = text.encode("latin1")
    pad = _HEADER_BYTES - len(_MAGIC) - 2 - len(body) - 1
    return _MAGIC + struct.pack("<H", _HEADER_BYTES - len(_MAGIC) - 2) + body + b" " * pad + b"\n"


class _ArrayFile:
    """A 1-D ``.npy`` file appended to; its header gets the length when closed."""

    def __init__(self, path: Path, dtype: type) -> None:
        self.dtype = np.dtype(dtype)
        self.count = 0
        self.fh = open(path, "wb")
        self.fh.write(_header(self.dtype, 0))

    def append(self, values: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.count += len(values)

    def close(self) -> None:
        self.fh.seek(0)
        self.fh.write(_header(self.dtype, self.count))
        self.fh.close()


class SplitWriter:
    """Writes an encoded split folder (replaced whole when the writer closes without an error)::

        with SplitWriter("data/tokens/train") as split:
            for src, tgt in chunks:
                split.append(src, tgt)
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.pairs = 0

    def __enter__(self) -> "SplitWriter":
        self._atomic = atomic_dir(self.folder)
        out = self._atomic.__enter__()
        self._files = {name: _ArrayFile(out / f"{name}.npy", np.int64 if name.endswith("offsets") else np.int32)
                       for name in ARRAYS}
        self._ends = {"src": 0, "tgt": 0}
        for side in ("src", "tgt"):
            self._files[f"{side}_offsets"].append(np.zeros(1, dtype=np.int64))
        return self

    def append(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> None:
        if len(src) != len(tgt):
            raise ValueError(f"{len(src)} sources but {len(tgt)} targets")
        for side, seqs in (("src", src), ("tgt", tgt)):
            flat = Sequences.of(seqs).compact()
            self._files[f"{side}_ids"].append(flat.ids)
            self._files[f"{side}_offsets"].append(flat.offsets[1:] + self._ends[side])
            self._ends[side] += int(flat.offsets[-1])
        self.pairs += len(src)

    def __exit__(self, kind, error, trace) -> bool | None:
        for file in self._files.values():
            file.close()
        return self._atomic.__exit__(kind, error, trace)


def save_encoded(folder: str | Path, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> None:
    """Write a whole split at once."""
    with SplitWriter(folder) as split:
        split.append(src, tgt)


def split_sha256(folder: str | Path) -> str:
    """One SHA-256 of a split's four arrays (their bytes in order): what identifies its data."""
    digest = hashlib.sha256()
    for name in ARRAYS:
        with open(Path(folder) / f"{name}.npy", "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def load_encoded(folder: str | Path) -> EncodedSplit:
    """The split in ``folder``: offsets memory-mapped (read-only), ids read from disk as needed."""
    folder = Path(folder)
    arrays = {}
    for name in ARRAYS:
        path = folder / f"{name}.npy"
        try:
            arrays[name] = (IdsOnDisk(path) if name.endswith("_ids")
                            else np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError, SyntaxError, EOFError) as err:
            reason = "missing" if not path.exists() else (str(err).splitlines()[0][:80] if str(err)
                                                           else type(err).__name__)
            raise DataError(f"{path}: not a readable encoded split ({reason}); rerun the tokenize stage "
                            "(dvc repro -f -s tokenize)") from None
    for side in ("src", "tgt"):
        ids, offsets = arrays[f"{side}_ids"], arrays[f"{side}_offsets"]
        if (ids.ndim != 1 or offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ids)
                or ids.dtype != np.int32 or offsets.dtype != np.int64):
            raise DataError(f"{folder / (side + '_offsets.npy')}: does not match {side}_ids.npy (cut short or "
                            "written by something else); rerun the tokenize stage (dvc repro -f -s tokenize)")
    if len(arrays["src_offsets"]) != len(arrays["tgt_offsets"]):
        raise DataError(f"{folder}: {len(arrays['src_offsets']) - 1:,} sources but "
                        f"{len(arrays['tgt_offsets']) - 1:,} targets; rerun the tokenize stage (dvc repro -f -s tokenize)")
    return EncodedSplit(Sequences(arrays["src_ids"], arrays["src_offsets"]),
                        Sequences(arrays["tgt_ids"], arrays["tgt_offsets"]))
