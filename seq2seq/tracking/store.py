"""MLflow: logging that never loses a training run (where the store is:
:mod:`seq2seq.core.mlflow_store`)."""
from __future__ import annotations

import random
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")
LOCK_WAIT_SECONDS = 120.0  # how long a writer waits for SQLite's lock (other stages, queue workers) in all

from ..core.guard import debug_enabled


def git_commit(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class StoreBusy(Exception):
    """The store stayed locked by other writers for LOCK_WAIT_SECONDS."""


def retry_locked(call: Callable[[], T], wait: float = LOCK_WAIT_SECONDS) -> T:
    """``call()``, again after a growing, jittered pause while SQLite answers "database is locked"
    (concurrent writers: ``dvc queue start -j N`` runs several stages at once)."""
    deadline, pause = time.monotonic() + wait, 0.05
    jitter = random.Random()
    while True:
        try:
            return call()
        except Exception as err:
            if "database is locked" not in str(err):
                raise
            if time.monotonic() > deadline:
                raise StoreBusy(f"the store stayed locked by other writers for {wait:.0f} s") from None
            time.sleep(pause * (0.5 + jitter.random()))
            pause = min(pause * 2, 2.0)


def warn(message: str) -> None:
    print(f"warning: MLflow: {message}", file=sys.stderr)


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


class NeverBreaks:
    """Tracking that never breaks a stage: the first failure prints one warning saying
    ``consequence``, and every later call does nothing."""

    consequence = "results are in metrics/ only"

    def __init__(self) -> None:
        self.failed = False

    def _attempt(self, what: str, action: Callable[[], Any]) -> bool:
        """Run ``action`` (again while the store is locked by another writer); on any other error
        warn ``what`` failed (once) and stop tracking."""
        if self.failed:
            return False
        try:
            with warnings.catch_warnings(record=True) as caught:  # MLflow's own warnings are not the user's business
                warnings.simplefilter("always")
                retry_locked(action)
            if debug_enabled():
                for warning in caught:
                    warn(str(warning.message).splitlines()[0][:200])
            return True
        except Exception as err:  # tracking must never break the pipeline
            warn(f"{what} ({_first_line(err)}); {self.consequence}")
            self.failed = True
            return False


class TrainingRunWriter(NeverBreaks):
    """Writes to the MLflow run that trained a model (its id from the model bundle); a bundle that
    names no run gets one warning, and nothing is written."""

    def __init__(self, training_run_id: str | None) -> None:
        super().__init__()
        self.training_run_id = training_run_id
        if not training_run_id:
            warn(f"the model bundle names no MLflow run; {self.consequence}")
            self.failed = True
