"""Training checkpoints: everything needed to resume a run exactly where it stopped.

A checkpoint holds the model, optimizer and learning-rate schedule states, the torch
RNG state, the position in the data order (epoch and batch), the validation history
so far and the best weights. It is written atomically (a kill -9 leaves the previous checkpoint intact)
and loaded with ``torch.load(weights_only=True)``: tensors and plain values only, no
pickled objects. Its fingerprint covers the model and training params, the data and
the package's code, so a change that would alter the result starts a fresh run.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import atomic_path
from ..params.config import OTHER_MODELS_KEYS, REPORTING_TRAIN_KEYS, ModelConfig, TrainConfig

CHECKPOINT_FILE = "last.pt"
SNAPSHOTS = "snapshots"  # with train.snapshots: the weights at every validation, step-NNNNNNN.pt
FORMAT_VERSION = 2
# Train params a checkpoint survives a change in: the reporting ones, and where and on how many threads it
# runs (a run may resume on another device; dvc.yaml still lists these two: they can change the last bits).
NEUTRAL_TRAIN_KEYS = REPORTING_TRAIN_KEYS + OTHER_MODELS_KEYS + ("device", "threads")


def code_digest(package: Path = Path(__file__).resolve().parents[1]) -> str:
    """A hash of every module of the package (the seq2seq folder, all subpackages)."""
    code = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        code.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return code.hexdigest()


def fingerprint(model: ModelConfig, train: TrainConfig, data_id: str) -> str:
    """A hash of everything that decides the trained weights: params, data and code."""
    train_values = {k: v for k, v in asdict(train).items() if k not in NEUTRAL_TRAIN_KEYS}
    blob = json.dumps({"model": asdict(model), "train": train_values, "data": data_id,
                       "code": code_digest(), "format": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def save_checkpoint(folder: Path, payload: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / CHECKPOINT_FILE) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(folder: Path | None, expected_fingerprint: str) -> tuple[dict[str, Any] | None, str]:
    """Return (checkpoint or None, a line saying why it is used or not)."""
    if folder is None:
        return None, "checkpoints off"
    path = folder / CHECKPOINT_FILE
    if not path.exists():
        return None, "no checkpoint: starting fresh"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt file must not stop training: start over
        return None, f"checkpoint {path} is unreadable ({type(err).__name__}): starting fresh"
    if not isinstance(payload, dict) or payload.get("fingerprint") != expected_fingerprint:
        return None, (f"checkpoint {path} was made with other params, data or code: starting fresh")
    progress = payload.get("progress", {})
    return payload, f"resuming from {path} at epoch {progress.get('epoch')}, step {progress.get('step')}"


def remove_checkpoint(folder: Path | None) -> None:
    if folder is not None:
        (folder / CHECKPOINT_FILE).unlink(missing_ok=True)


def save_snapshot(folder: Path, step: int, payload: dict[str, Any]) -> None:
    """The model's weights at a validation (``payload``: ``model`` plus plain values such as the
    training seconds so far), kept beside the checkpoint for curves of test scores over time."""
    with atomic_path(folder / SNAPSHOTS / f"step-{step:07d}.pt") as tmp:
        torch.save(payload, tmp)


def list_snapshots(folder: Path) -> list[Path]:
    return sorted((folder / SNAPSHOTS).glob("step-*.pt"))


def remove_snapshots(folder: Path | None) -> None:
    """A fresh run starts without the snapshots of an earlier one."""
    if folder is not None:
        for path in list_snapshots(folder):
            path.unlink()
