"""Shared fixtures: a tiny synthetic English->Spanish corpus the tests write themselves."""
from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

import pytest

ADJ = {"red": "rojo", "big": "grande", "old": "viejo", "small": "pequeño", "black": "negro", "new": "nuevo"}
NOUN = {"cat": "gato", "dog": "perro", "horse": "caballo", "bird": "pájaro", "car": "coche", "book": "libro"}
VERB = {"sees": "ve", "wants": "quiere", "has": "tiene", "likes": "quiere a", "finds": "encuentra"}


def synthetic_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Distinct pairs 'The red cat sees the dog.' -> 'El gato rojo ve el perro.'"""
    combos = list(itertools.product(ADJ, NOUN, VERB, NOUN))
    random.Random(seed).shuffle(combos)
    pairs = []
    for adj, noun, verb, obj in combos[:n]:
        en = f"The {adj} {noun} {verb} the {obj}."
        es = f"El {NOUN[noun]} {ADJ[adj]} {VERB[verb]} el {NOUN[obj]}."
        pairs.append((en, es))
    return pairs


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    return path


@pytest.fixture
def tiny_pairs() -> list[tuple[str, str]]:
    return synthetic_pairs(400)


@pytest.fixture
def tiny_tsv(tmp_path: Path, tiny_pairs: list[tuple[str, str]]) -> Path:
    return write_tsv(tmp_path / "corpus.tsv", tiny_pairs)


def pytest_configure(config):
    """With pytest-xdist (``-n 2``), the workers share the cores: each runs PyTorch on one thread, and
    threads that wait sleep instead of spinning (OpenMP threads spinning for a core another process
    holds thrash). Set before torch is imported here, so the processes a test starts inherit it."""
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA GPU: skipped, and saying so, where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
