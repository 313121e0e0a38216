"""The exported model in MLflow: logged to the training run that made the model, as the model ``onnx``.

It is the same pyfunc model code as the trained bundle's (:mod:`.pyfunc_model`) over the exported
folder, with requirements that leave torch out (onnxruntime, numpy, sentencepiece, pyyaml), so
``mlflow.pyfunc.load_model("models:/m-...")`` predicts in an environment without torch. An export
already logged to the run (same files, by checksum) is not logged again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..core.mlflow_store import configure_tracking, tracking_uri
from .store import TrainingRunWriter, retry_locked

EXPORT_TAG = "seq2seq.export"  # the exported files' checksums, digested


def export_digest(info: dict) -> str:
    return hashlib.sha256(json.dumps(info["sha256"], sort_keys=True).encode()).hexdigest()[:32]


def runtime_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("onnxruntime", "numpy", "sentencepiece", "pyyaml", "mlflow")]


class ExportLog(TrainingRunWriter):
    """Logs exported folders to the training run ``training_run_id``."""

    consequence = "the exported model is in data/export/ only"

    def record(self, folder: Path, info: dict, example: list[str]) -> str | None:
        """Log ``folder`` (export.json ``info``) as the model ``onnx`` (``onnx-int8``); returns its model id."""
        logged: list[str] = []
        self._attempt(f"could not log the exported model at {tracking_uri()}",
                      lambda: logged.append(self._record(folder, info, example)))
        return logged[0] if logged else None

    def _record(self, folder: Path, info: dict, example: list[str]) -> str:
        import mlflow

        from . import pyfunc_model

        configure_tracking()
        client = mlflow.MlflowClient()
        run = retry_locked(lambda: client.get_run(self.training_run_id))
        digest = export_digest(info)
        name = "onnx" if info["precision"] == "fp32" else f"onnx-{info['precision']}"
        earlier = retry_locked(lambda: mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id], output_format="list",
            filter_string=f"source_run_id = '{run.info.run_id}' and name = '{name}'"))
        for model in earlier:
            if model.tags.get(EXPORT_TAG) == digest:
                return model.model_id
        with retry_locked(lambda: mlflow.start_run(run_id=run.info.run_id)):
            logged = retry_locked(lambda: mlflow.pyfunc.log_model(
                name=name,
                python_model=pyfunc_model.__file__,  # models from code: nothing pickled
                artifacts={pyfunc_model.BUNDLE_ARTIFACT: str(folder)},
                code_paths=[str(Path(__file__).resolve().parents[1])],  # the seq2seq package
                input_example=(example, pyfunc_model.PREDICT_PARAMS),
                pip_requirements=runtime_requirements(),
                tags={EXPORT_TAG: digest, "seq2seq.precision": info["precision"]},
            ))
        return logged.model_id
