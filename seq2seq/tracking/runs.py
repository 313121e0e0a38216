"""One MLflow run per trained model: params, curves, summary and the model itself.

The run is named after the DVC experiment that made it, else after the model
(``gru-luong-256``); its evaluations are child runs (:mod:`.evaluations`).

If the tracking store cannot be reached, training still runs and writes its outputs;
one warning says what was not logged.
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..core.mlflow_store import configure_tracking, default_artifact_location, tracking_uri
from ..core.paths import project_root
from ..params.config import Params, flatten
from ..training.trainer import ValidationRecord
from .evaluations import KIND_TAG

MODEL_TAG = "seq2seq.model"
from .store import NeverBreaks, git_commit, retry_locked, warn

# Sections that shape the model: logged as params of the training run. Decode and score
# settings change without retraining: they are params of each evaluation run.
TRAIN_SECTIONS = ("data", "clean", "tokenize", "model", "train", "mlflow")
VALIDATION_METRICS = ("train_loss", "valid_loss", "valid_perplexity", "valid_bleu", "valid_chrf", "learning_rate",
                 "teacher_forcing", "tokens_per_second")


def run_name(params: Params) -> str:
    """The DVC experiment's name where there is one, else the model in brief: ``gru-luong-256``; one of
    several seeds (train.more_seeds) adds its seed: ``gru-luong-256-seed7``."""
    model, seed = params.model, params.train.seed
    name = os.environ.get("DVC_EXP_NAME") or f"{model.cell}-{model.attention}-{model.hidden_size}"
    return f"{name}-seed{seed}" if params.train.more_seeds else name


class TrainingRun(NeverBreaks):
    """Context around training: an MLflow run if the store answers, else a no-op that warned once."""

    consequence = "training goes on, this run is not tracked"

    def __init__(self, params: Params, data_sha256: str, resume_run_id: str | None = None,
                 model_key: str = "") -> None:
        super().__init__()
        self.params = params
        self.data_sha256 = data_sha256
        self.model_key = model_key  # params, data and code: the same key, the same model
        self.yielded = False  # another run stands for this model (see standing_run_id)
        self.resume_run_id = resume_run_id
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._mlflow: Any = None

    def __enter__(self) -> "TrainingRun":
        self._attempt(f"cannot start a run at {tracking_uri()}", self._start)
        return self

    def _start(self) -> None:
        """Every call to the store on its own, retried while another writer holds SQLite's lock."""
        import mlflow

        configure_tracking()
        name = self.params.mlflow.experiment_name
        if retry_locked(lambda: mlflow.get_experiment_by_name(name)) is None:
            try:
                retry_locked(lambda: mlflow.create_experiment(name, artifact_location=default_artifact_location()))
            except mlflow.exceptions.MlflowException:  # made meanwhile by another process: use that one
                pass
        retry_locked(lambda: mlflow.set_experiment(name))
        run = self._resume() or retry_locked(lambda: mlflow.start_run(run_name=run_name(self.params)))
        self._mlflow = mlflow
        self.run_id = run.info.run_id
        self.experiment_id = run.info.experiment_id
        flat = flatten(self.params)
        retry_locked(lambda: mlflow.log_params({k: v for k, v in flat.items() if k.split(".")[0] in TRAIN_SECTIONS}))
        tags = {"data.sha256": self.data_sha256, "stage": "train", KIND_TAG: "training", MODEL_TAG: self.model_key}
        commit = git_commit(project_root())
        if commit:
            tags["git.commit"] = commit
        if os.environ.get("DVC_EXP_NAME"):
            tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
        retry_locked(lambda: mlflow.set_tags(tags))

    def _resume(self) -> Any:
        """Reopen the run of an interrupted training that is being resumed, if it still exists."""
        if not self.resume_run_id:
            return None
        import mlflow

        try:
            return mlflow.start_run(run_id=self.resume_run_id)
        except Exception:
            warn(f"run {self.resume_run_id} of the interrupted training is gone; logging to a new run")
            return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.active:
            self._attempt("cannot close the run", lambda: self._mlflow.end_run("FINISHED" if exc_type is None
                                                                              else "FAILED"))

    def standing_run_id(self) -> str | None:
        """The run that stands for this model: the earliest live training run with the same model
        key. Where that is another run (the same model trained at once by another queue worker,
        or again by a forced rerun), this run is deleted and the other one's id returned, so a
        sweep holds one training run per distinct model and evaluations gather under it."""
        if not self.active or not self.model_key:
            return self.run_id
        standing: list[str] = []

        def find() -> None:
            client = self._mlflow.MlflowClient()
            runs = retry_locked(lambda: client.search_runs(
                [self.experiment_id], order_by=["attributes.start_time ASC"], max_results=1,
                filter_string=f"tags.`{MODEL_TAG}` = '{self.model_key}' and attributes.status != 'FAILED'"))
            earliest = runs[0].info.run_id if runs else self.run_id
            if earliest != self.run_id:
                retry_locked(lambda: self._mlflow.end_run("FINISHED"))
                retry_locked(lambda: client.delete_run(self.run_id))
                print(f"train: the same model (params, data, code) is MLflow run {earliest}; this run's "
                      f"duplicate record is deleted", file=sys.stderr)
                self.yielded = True  # nothing more is logged here
            standing.append(earliest)

        self._attempt("cannot look for an earlier run of the same model", find)
        return standing[0] if standing else self.run_id

    def _attempt(self, what: str, action: Any) -> bool:
        return False if self.yielded else super()._attempt(what, action)

    @property
    def active(self) -> bool:
        return self._mlflow is not None and not self.failed and not self.yielded

    def log_validation(self, record: ValidationRecord) -> None:
        """One point on each curve, at the record's training step."""
        values = asdict(record)
        self._attempt("cannot log validation metrics", lambda: self._mlflow.log_metrics(
            {k: values[k] for k in VALIDATION_METRICS if values[k] == values[k]}, step=record.step))

    def log_dataset(self, preview: Any, path: Path, sha256: str, context: str) -> None:
        """Record a split (the file ``path``; ``preview``: a DataFrame of its first pairs, for the
        schema) as an MLflow dataset input, its digest the start of the file's sha256. Nothing is
        read whole: a training split may hold tens of millions of pairs."""
        def log() -> None:
            from mlflow.data.meta_dataset import MetaDataset
            from mlflow.data.sources import LocalArtifactDatasetSource
            from mlflow.models import infer_signature

            # a source object, not a path string: a string makes MLflow warn that it could be two kinds of source
            dataset = MetaDataset(
                source=LocalArtifactDatasetSource(str(Path(path).resolve())),
                name=f"{self.params.data.src_lang}-{self.params.data.tgt_lang} {Path(path).stem}",
                digest=sha256[:32], schema=infer_signature(preview).inputs)
            self._mlflow.log_input(dataset, context=context)

        self._attempt(f"cannot log the dataset {path}", log)

    def log_summary(self, summary: dict[str, float]) -> None:
        self._attempt("cannot log the summary", lambda: self._mlflow.log_metrics(
            {k: float(v) for k, v in summary.items() if isinstance(v, (int, float))}))

    def log_model(self, bundle_dir: Path, example: list[str]) -> None:
        """Log the bundle as an ``mlflow.pyfunc`` model named ``model``."""
        def log() -> None:
            from . import pyfunc_model

            self._mlflow.pyfunc.log_model(
                name="model",
                python_model=pyfunc_model.__file__,  # models from code: nothing pickled
                artifacts={pyfunc_model.BUNDLE_ARTIFACT: str(bundle_dir)},
                code_paths=[str(Path(__file__).resolve().parents[1])],  # the seq2seq package
                # the signature comes from predict's type hints; params from this example
                input_example=(example, pyfunc_model.PREDICT_PARAMS),
                pip_requirements=_requirements(),
            )

        self._attempt("cannot log the model", log)

    def log_file(self, path: Path) -> None:
        self._attempt(f"cannot log {path}", lambda: self._mlflow.log_artifact(str(path)))


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "sentencepiece", "sacrebleu", "numpy", "pyyaml",
                                                     "pandas", "mlflow")]

