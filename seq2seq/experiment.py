"""One MLflow run per trained model: params, curves, summary and the model itself.

If the tracking store cannot be reached, training still runs and writes its outputs;
one warning says what was not logged.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import Params, flatten
from .tracking import configure_tracking, git_commit, tracking_uri, warn
from .training import ValidationRecord

# Sections that shape the model: logged as params of the training run. Decode and score
# settings change without retraining, so they are tags set by the score stage.
TRAIN_SECTIONS = ("data", "clean", "tokenize", "model", "train", "mlflow")
VALIDATION_METRICS = ("train_loss", "valid_loss", "valid_perplexity", "valid_bleu", "valid_chrf", "learning_rate",
                 "teacher_forcing", "tokens_per_second")


class TrainingRun:
    """Context around training: an MLflow run if the store answers, else a no-op that warned once."""

    def __init__(self, params: Params, data_sha256: str, resume_run_id: str | None = None) -> None:
        self.params = params
        self.data_sha256 = data_sha256
        self.resume_run_id = resume_run_id
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._mlflow: Any = None

    def __enter__(self) -> "TrainingRun":
        try:
            import mlflow

            configure_tracking()
            mlflow.set_experiment(self.params.mlflow.experiment_name)
            run = self._resume() or mlflow.start_run()
            self._mlflow = mlflow
            self.run_id = run.info.run_id
            self.experiment_id = run.info.experiment_id
            flat = flatten(self.params)
            mlflow.log_params({k: v for k, v in flat.items() if k.split(".")[0] in TRAIN_SECTIONS})
            tags = {"data.sha256": self.data_sha256, "stage": "train"}
            commit = git_commit(os.environ.get("DVC_ROOT", "."))
            if commit:
                tags["git.commit"] = commit
            if os.environ.get("DVC_EXP_NAME"):
                tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
            mlflow.set_tags(tags)
        except Exception as err:  # tracking must never stop training
            self._fail(f"cannot start a run at {tracking_uri()}", err)
        return self

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

    def _fail(self, what: str, err: Exception) -> None:
        warn(f"{what} ({str(err).splitlines()[0][:200] if str(err) else type(err).__name__}); "
             "training goes on, this run is not tracked")
        self._mlflow = None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._mlflow is not None:
            try:
                self._mlflow.end_run("FINISHED" if exc_type is None else "FAILED")
            except Exception as err:
                self._fail("cannot close the run", err)

    @property
    def active(self) -> bool:
        return self._mlflow is not None

    def log_validation(self, record: ValidationRecord) -> None:
        """One point on each curve, at the record's training step."""
        if not self.active:
            return
        try:
            values = asdict(record)
            self._mlflow.log_metrics({k: values[k] for k in VALIDATION_METRICS if values[k] == values[k]},
                                     step=record.step)
        except Exception as err:
            self._fail("cannot log validation metrics", err)

    def log_dataset(self, frame: Any, path: Path, sha256: str, context: str, targets: str = "target") -> None:
        """Record a split (a DataFrame read from ``path``) as an MLflow dataset input, its
        digest the start of the file's sha256."""
        if not self.active:
            return
        try:
            dataset = self._mlflow.data.from_pandas(
                frame, source=str(Path(path).resolve()), targets=targets,
                name=f"{self.params.data.src_lang}-{self.params.data.tgt_lang} {Path(path).stem}",
                digest=sha256[:32])
            self._mlflow.log_input(dataset, context=context)
        except Exception as err:
            self._fail(f"cannot log the dataset {path}", err)

    def log_summary(self, summary: dict[str, float]) -> None:
        if not self.active:
            return
        try:
            self._mlflow.log_metrics({k: float(v) for k, v in summary.items() if isinstance(v, (int, float))})
        except Exception as err:
            self._fail("cannot log the summary", err)

    def log_model(self, bundle_dir: Path, example: list[str]) -> None:
        """Log the bundle as an ``mlflow.pyfunc`` model named ``model``."""
        if not self.active:
            return
        try:
            from .mlflow_model import BUNDLE_ARTIFACT, PREDICT_PARAMS, TranslatorModel

            package_dir = Path(__file__).resolve().parent
            self._mlflow.pyfunc.log_model(
                name="model",
                python_model=TranslatorModel(),
                artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
                code_paths=[str(package_dir)],
                # the signature comes from predict's type hints; params from this example
                input_example=(example, PREDICT_PARAMS),
                pip_requirements=_requirements(),
            )
        except Exception as err:
            self._fail("cannot log the model", err)

    def log_file(self, path: Path) -> None:
        if self.active:
            try:
                self._mlflow.log_artifact(str(path))
            except Exception as err:
                self._fail(f"cannot log {path}", err)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "sentencepiece", "sacrebleu", "numpy", "pyyaml",
                                                     "pandas", "mlflow")]

