"""MLflow: where the store is, and logging that never loses a training run.

The store is ``MLFLOW_TRACKING_URI`` when set, else SQLite at the repository root
(``$DVC_ROOT/mlflow.db``: DVC sets ``DVC_ROOT`` for every stage, also when a stage
runs in a temporary copy under ``dvc exp run --temp``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def tracking_uri() -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


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


class RunLog:
    """Logging into an existing run (the one that made the model) that never breaks a stage:
    the first failure prints one warning, and later calls do nothing."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        self._client: Any = None
        self.failed = False
        if not run_id:
            warn("the model bundle names no MLflow run; results are in metrics/ only")
            self.failed = True

    def _do(self, what: str, action: Any) -> bool:
        if self.failed:
            return False
        try:
            if self._client is None:
                import mlflow

                configure_tracking()
                self._client = mlflow.MlflowClient()
            action(self._client)
            return True
        except Exception as err:  # tracking must never break the pipeline
            warn(f"could not log {what} to run {self.run_id} at {tracking_uri()} "
                 f"({str(err).splitlines()[0][:200] if str(err) else type(err).__name__}); "
                 "results are in metrics/ only")
            self.failed = True
            return False

    def metrics(self, values: dict[str, float], step: int = 0) -> bool:
        return self._do("metrics", lambda c: [c.log_metric(self.run_id, k, float(v), step=step)
                                              for k, v in values.items()])

    def tags(self, values: dict[str, Any]) -> bool:
        return self._do("tags", lambda c: [c.set_tag(self.run_id, k, str(v)) for k, v in values.items()])

    def artifacts(self, paths: list[Path], folder: str | None = None) -> bool:
        return self._do("artifacts", lambda c: [c.log_artifact(self.run_id, str(p), folder) for p in paths])

    def table(self, data: dict[str, list], artifact_file: str) -> bool:
        return self._do("a table", lambda c: c.log_table(self.run_id, data, artifact_file))
