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


def log_metrics_safely(run_id: str | None, metrics: dict[str, float], tags: dict[str, Any] | None = None,
                       artifacts: list[Path] | None = None, step: int | None = None) -> bool:
    """Log into an existing run; on any tracking failure print one warning and carry on."""
    if not run_id:
        warn("the model bundle names no MLflow run; scores are in metrics/ only")
        return False
    try:
        import mlflow

        configure_tracking()
        client = mlflow.MlflowClient()
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value), step=step or 0)
        for key, value in (tags or {}).items():
            client.set_tag(run_id, key, str(value))
        for path in artifacts or []:
            client.log_artifact(run_id, str(path))
        return True
    except Exception as err:  # tracking must never break the pipeline
        warn(f"could not log to run {run_id} at {tracking_uri()} ({str(err).splitlines()[0][:200]}); "
             "scores are in metrics/ only")
        return False
