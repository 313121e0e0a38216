"""Where MLflow's store is: ``MLFLOW_TRACKING_URI`` when set, else SQLite at the repository root
(``mlflow.db`` in :func:`seq2seq.core.paths.project_root`, also when a stage runs in a temporary
copy under ``dvc exp run --temp`` or in a benchmark recipe's folder). Here, below everything, because
both the runs that are written (:mod:`seq2seq.tracking`) and a model fetched from its URI
(:mod:`seq2seq.bundle.locate`) need it.
"""
from __future__ import annotations

import os

from .paths import project_root


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
    """Point MLflow at the store, and keep its INFO lines (database setup, migrations) off the stage's output."""
    import logging

    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no download bars in a stage's output
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri
