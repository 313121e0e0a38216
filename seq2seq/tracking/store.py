"""MLflow: where the store is, and logging that never loses a training run.

The store is ``MLFLOW_TRACKING_URI`` when set, else SQLite at the repository root
(``mlflow.db`` in :func:`seq2seq.core.paths.project_root`, also when a stage runs in a temporary
copy under ``dvc exp run --temp`` or in a benchmark recipe's folder).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from ..core.paths import project_root


def default_store_uri() -> str:
    return f"sqlite:///{project_root() / 'mlflow.db'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_store_uri()


def default_artifact_location() -> str | None:
    """With the default store (``mlflow.db`` at the repository root), artifacts go to ``mlruns/``
    beside it, whichever folder a stage runs in (a recipe's stages run in their own); with
    another store, its server decides. (``mlflow.set_tracking_uri`` also sets
    ``$MLFLOW_TRACKING_URI``, so the store is compared, not the variable's presence.)"""
    if tracking_uri() != default_store_uri():
        return None
    return (project_root() / "mlruns").as_uri()


def configure_tracking() -> str:
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


def git_commit(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


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
        """Run ``action``; on any error warn ``what`` failed (once) and stop tracking."""
        if self.failed:
            return False
        try:
            action()
            return True
        except Exception as err:  # tracking must never break the pipeline
            warn(f"{what} ({_first_line(err)}); {self.consequence}")
            self.failed = True
            return False


class RunLog(NeverBreaks):
    """Logging into an existing run (the one that made the model), by its id."""

    def __init__(self, run_id: str | None) -> None:
        super().__init__()
        self.run_id = run_id
        self._client: Any = None
        if not run_id:
            warn(f"the model bundle names no MLflow run; {self.consequence}")
            self.failed = True

    def _do(self, what: str, action: Any) -> bool:
        return self._attempt(f"could not log {what} to run {self.run_id} at {tracking_uri()}",
                             lambda: action(self._connected()))

    def _connected(self) -> Any:
        if self._client is None:
            import mlflow

            configure_tracking()
            self._client = mlflow.MlflowClient()
        return self._client

    def metrics(self, values: dict[str, float], step: int = 0) -> bool:
        return self._do("metrics", lambda c: [c.log_metric(self.run_id, k, float(v), step=step)
                                              for k, v in values.items()])

    def tags(self, values: dict[str, Any]) -> bool:
        return self._do("tags", lambda c: [c.set_tag(self.run_id, k, str(v)) for k, v in values.items()])

    def artifacts(self, paths: list[Path], folder: str | None = None) -> bool:
        return self._do("artifacts", lambda c: [c.log_artifact(self.run_id, str(p), folder) for p in paths])

    def table(self, data: dict[str, list], artifact_file: str) -> bool:
        return self._do("a table", lambda c: c.log_table(self.run_id, data, artifact_file))
