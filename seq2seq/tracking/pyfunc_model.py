"""The trained model as an ``mlflow.pyfunc`` model: ``predict(list[str]) -> list[str]``.

One model code for both kinds of model folder: a trained bundle (the training run's ``model``,
run by PyTorch) and an exported folder (its ``onnx`` model, run by ONNX Runtime: loading and
predicting it never imports torch, so it serves from an environment without torch).

Logged as "models from code": MLflow runs this file to get the model (``set_model`` below)
instead of unpickling a Python object, so loading a logged model executes only this code and
the package it imports (the logged ``code`` folder). Hence the absolute imports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc

from seq2seq.search.settings import predict_params

BUNDLE_ARTIFACT = "bundle"
# Search settings a caller may pass as ``params`` (e.g. {"beam": 1} over HTTP), with their defaults.
PREDICT_PARAMS = predict_params()


class TranslatorModel(mlflow.pyfunc.PythonModel):
    """Wraps a translator; the model folder travels as the ``bundle`` artifact."""

    def load_context(self, context: Any) -> None:
        from seq2seq.decoding.load import load_translator

        self.translator = load_translator(Path(context.artifacts[BUNDLE_ARTIFACT]), device="cpu")

    def predict(self, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        settings = {k: v for k, v in (params or {}).items() if k in PREDICT_PARAMS}
        return self.translator.translate(list(model_input), **settings)


mlflow.models.set_model(TranslatorModel())
