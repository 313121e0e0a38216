"""One MLflow run per trained model: params, curves, summary and the model itself.

If the tracking store cannot be reached, training still runs and writes its outputs;
one warning says what was not logged.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..core.config import Params, flatten
from ..core.paths import project_root
from ..training.trainer import ValidationRecord
from .store import NeverBreaks, configure_tracking, default_artifact_location, git_commit, tracking_uri, warn

# Sections that shape the model: logged as params of the training run. Decode and score
# settings change without retraining, so they are tags set by the score stage.
TRAIN_SECTIONS = ("data", "clean", "tokenize", "model", "train", "mlflow")
VALIDATION_METRICS = ("train_loss", "valid_loss", "valid_perplexity", "valid_bleu", "valid_chrf", "learning_rate",
                 "teacher_forcing", "tokens_per_second")


class TrainingRun(NeverBreaks):
    """Context around training: an MLflow run if the store answers, else a no-op that warned once."""

    consequence = "training goes on, this run is not tracked"

    def __init__(self, params: Params, data_sha256: str, resume_run_id: str | None = None) -> None:
        super().__init__()
        self.params = params
        self.data_sha256 = data_sha256
        self.resume_run_id = resume_run_id
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._mlflow: Any = None

    def __enter__(self) -> "TrainingRun":
        self._attempt(f"cannot start a run at {tracking_uri()}", self._start)
        return self

    def _start(self) -> None:
        import mlflow

        configure_tracking()
        name = self.params.mlflow.experiment_name
        if mlflow.get_experiment_by_name(name) is None:
            try:
                mlflow.create_experiment(name, artifact_location=default_artifact_location())
            except mlflow.exceptions.MlflowException:  # made meanwhile by another process: use that one
                pass
        mlflow.set_experiment(name)
        run = self._resume() or mlflow.start_run()
        self._mlflow = mlflow
        self.run_id = run.info.run_id
        self.experiment_id = run.info.experiment_id
        flat = flatten(self.params)
        mlflow.log_params({k: v for k, v in flat.items() if k.split(".")[0] in TRAIN_SECTIONS})
        tags = {"data.sha256": self.data_sha256, "stage": "train"}
        commit = git_commit(project_root())
        if commit:
            tags["git.commit"] = commit
        if os.environ.get("DVC_EXP_NAME"):
            tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
        mlflow.set_tags(tags)

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

    @property
    def active(self) -> bool:
        return self._mlflow is not None and not self.failed

    def log_validation(self, record: ValidationRecord) -> None:
        """One point on each curve, at the record's training step."""
        values = asdict(record)
        self._attempt("cannot log validation metrics", lambda: self._mlflow.log_metrics(
            {k: values[k] for k in VALIDATION_METRICS if values[k] == values[k]}, step=record.step))

    def log_dataset(self, frame: Any, path: Path, sha256: str, context: str, targets: str = "target") -> None:
        """Record a split (a DataFrame read from ``path``) as an MLflow dataset input, its
        digest the start of the file's sha256."""
        def log() -> None:
            dataset = self._mlflow.data.from_pandas(
                frame, source=str(Path(path).resolve()), targets=targets,
                name=f"{self.params.data.src_lang}-{self.params.data.tgt_lang} {Path(path).stem}",
                digest=sha256[:32])
            self._mlflow.log_input(dataset, context=context)

        self._attempt(f"cannot log the dataset {path}", log)

    def log_summary(self, summary: dict[str, float]) -> None:
        self._attempt("cannot log the summary", lambda: self._mlflow.log_metrics(
            {k: float(v) for k, v in summary.items() if isinstance(v, (int, float))}))

    def log_model(self, bundle_dir: Path, example: list[str]) -> None:
        """Log the bundle as an ``mlflow.pyfunc`` model named ``model``."""
        def log() -> None:
            from .pyfunc_model import BUNDLE_ARTIFACT, PREDICT_PARAMS, TranslatorModel

            self._mlflow.pyfunc.log_model(
                name="model",
                python_model=TranslatorModel(),
                artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
                code_paths=[str(Path(__file__).resolve().parents[1])],  # the seq2seq package
                # the signature comes from predict's type hints; params from this example
                input_example=(example, PREDICT_PARAMS),
                pip_requirements=_requirements(),
            )

        self._attempt("cannot log the model", log)

    def log_file(self, path: Path) -> None:
        self._attempt(f"cannot log {path}", lambda: self._mlflow.log_artifact(str(path)))


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "sentencepiece", "sacrebleu", "numpy", "pyyaml",
                                                     "pandas", "mlflow")]

