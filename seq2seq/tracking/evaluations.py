"""One MLflow run per evaluation: a trained model x a test set x decode settings.

Each evaluation is a child of the training run that made the model (``mlflow.parentRunId``), named
by test set and settings (``test · beam 5``), with the model's defining params (``model.*``: cell,
attention, sizes, as the training run logged them) and the decode and score settings as params, so
that the compare view shows which model and which search each score belongs to, the test set as its
dataset (name and digest), its scores as metrics (also linked to the logged model and the dataset,
so the model's page lists them per test set), and its artifacts. An evaluation is identified by a
key over all of that: the same evaluation recorded again (a forced rerun) adds nothing, and other
settings add a record and never change an earlier one. The training run gets ``evaluations.json``, a
summary table of its evaluations (an artifact, not metrics, so it cannot be mistaken for one of
them)."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import sha256_file
from ..core.mlflow_store import configure_tracking, tracking_uri
from .store import TrainingRunWriter, retry_locked

EVALUATION_KEY_TAG = "seq2seq.evaluation"
KIND_TAG = "seq2seq.kind"
SUMMARY_ARTIFACT = "evaluations.json"


def settings_label(decode: dict[str, Any]) -> str:
    """``beam 5``, ``greedy``, ``sampling t=0.8 top-p 0.9``: how the hypotheses were searched."""
    if decode.get("sampling"):
        label = f"sampling t={decode.get('temperature')}"
        if decode.get("top_k"):
            label += f" top-k {decode['top_k']}"
        if decode.get("top_p", 1.0) < 1.0:
            label += f" top-p {decode['top_p']}"
        return label
    beam = int(decode.get("beam_width", 1))
    label = "greedy" if beam == 1 else f"beam {beam}"
    if beam > 1 and decode.get("length_penalty", 1.0) != 1.0:
        label += f" α {decode['length_penalty']}"
    if decode.get("quantize", "none") != "none":
        label += f" {decode['quantize']}"
    return label


@dataclass
class Evaluation:
    """What one score stage measured, ready to record."""

    test_set: str
    test_digest: str  # sha256 of the test set's pairs file
    decode: dict[str, Any]  # the decode params used (decode.*, as in settings.json)
    score: dict[str, Any]  # the score params used (score.*)
    metrics: dict[str, float]  # bleu, chrf, ter (and *_multi_ref)
    signatures: dict[str, str]
    pairs: Any  # the test set as a DataFrame (source, target), for the dataset record
    pairs_path: Path
    artifacts: list[Path] = field(default_factory=list)
    attention: list[Path] = field(default_factory=list)
    samples: dict[str, list] = field(default_factory=dict)
    dvc_experiment: str | None = None
    model: dict[str, Any] = field(default_factory=dict)  # the model's config (config.json's model: cell, ...)
    members: list[str] = field(default_factory=list)  # an ensemble's models ("seed 42: run ID"); [] for one model

    @property
    def name(self) -> str:
        ensemble = f" · ensemble of {len(self.members)}" if self.members else ""
        return f"{self.test_set} · {settings_label(self.decode)}{ensemble}"

    def key(self, training_run_id: str) -> str:
        """The same model (or ensemble), test set (by content) and settings give the same key."""
        what = {"run": training_run_id, "test_set": self.test_set, "digest": self.test_digest,
                "decode": self.decode, "score": self.score, **({"members": self.members} if self.members else {})}
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def test_set_evaluation(name: str, pairs_path: Path, pairs: Any, decode: dict[str, Any], score: dict[str, Any],
                        scores: dict[str, Any], model: dict[str, Any], **more: Any) -> Evaluation:
    """The evaluation of test set ``name`` (its pairs file and table) scored by sacreBLEU (``scores``, as
    :func:`seq2seq.reporting.scoring.score_corpus` gives them), tagged with the DVC experiment it ran
    in; ``more``: the other fields of :class:`Evaluation` (extra metrics in ``metrics``)."""
    metrics = {k: scores[k] for k in ("bleu", "chrf", "ter")} | more.pop("metrics", {})
    return Evaluation(test_set=name, test_digest=sha256_file(pairs_path), decode=decode, score=score,
                      metrics=metrics, signatures=scores["signatures"], pairs=pairs, pairs_path=pairs_path,
                      dvc_experiment=os.environ.get("DVC_EXP_NAME") or None, model=model, **more)


class EvaluationLog(TrainingRunWriter):
    """Records evaluations of the model that training run ``training_run_id`` made."""

    consequence = "scores are in metrics/ only"

    def record(self, evaluation: Evaluation) -> str | None:
        """Log ``evaluation`` as a child run; returns its run id (an earlier identical one's if it
        exists), or None if tracking failed (after one warning)."""
        recorded: list[str] = []
        self._attempt(f"could not record the evaluation at {tracking_uri()}",
                      lambda: recorded.append(self._record(evaluation)))
        return recorded[0] if recorded else None

    def _record(self, evaluation: Evaluation) -> str:
        """Every call to the store on its own, retried while another writer holds SQLite's lock."""
        import mlflow

        configure_tracking()
        client = mlflow.MlflowClient()
        parent = retry_locked(lambda: client.get_run(self.training_run_id))
        experiment_id, parent_id = parent.info.experiment_id, parent.info.run_id
        key = evaluation.key(parent_id)
        earlier = retry_locked(lambda: client.search_runs(
            [experiment_id], max_results=1,
            filter_string=f"tags.`{EVALUATION_KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'"))
        if earlier:
            return earlier[0].info.run_id
        models = retry_locked(lambda: mlflow.search_logged_models(  # the trained model, not its ONNX export
            experiment_ids=[experiment_id], output_format="list",
            filter_string=f"source_run_id = '{parent_id}' and name = 'model'"))
        model_id = models[0].model_id if models else None
        tags = {EVALUATION_KEY_TAG: key, KIND_TAG: "evaluation", "test_set": evaluation.test_set,
                **{f"signature.{k}": v for k, v in evaluation.signatures.items()}}
        if evaluation.dvc_experiment:
            tags["dvc.experiment"] = evaluation.dvc_experiment
        run = retry_locked(lambda: mlflow.start_run(experiment_id=experiment_id, run_name=evaluation.name,
                                                    parent_run_id=parent_id, tags=tags))
        status = "FAILED"
        try:
            retry_locked(lambda: mlflow.log_params({
                "test_set": evaluation.test_set, "model_run": parent_id,
                **{f"model.{k}": v for k, v in evaluation.model.items()},
                **{f"decode.{k}": v for k, v in evaluation.decode.items()},
                **{f"score.{k}": v for k, v in evaluation.score.items()},
                **({"ensemble.size": len(evaluation.members), "ensemble.members": "; ".join(evaluation.members)}
                   if evaluation.members else {})}))
            from mlflow.data.sources import LocalArtifactDatasetSource

            dataset = mlflow.data.from_pandas(evaluation.pairs,
                                              source=LocalArtifactDatasetSource(str(evaluation.pairs_path.resolve())),
                                              targets="target", name=evaluation.test_set,
                                              digest=evaluation.test_digest[:32])
            retry_locked(lambda: mlflow.log_input(dataset, context="evaluation"))
            retry_locked(lambda: mlflow.log_metrics(evaluation.metrics, model_id=model_id, dataset=dataset))
            for path in evaluation.artifacts:
                retry_locked(lambda: mlflow.log_artifact(str(path)))
            for path in evaluation.attention:
                retry_locked(lambda: mlflow.log_artifact(str(path), "attention"))
            if evaluation.samples:
                retry_locked(lambda: mlflow.log_table(evaluation.samples, "samples.json"))
            status = "FINISHED"
        finally:
            retry_locked(lambda: mlflow.end_run(status))
        summary = retry_locked(lambda: self._summary(client, experiment_id, parent_id))
        retry_locked(lambda: client.log_dict(parent_id, summary, SUMMARY_ARTIFACT))
        return run.info.run_id

    @staticmethod
    def _summary(client: Any, experiment_id: str, parent_id: str) -> list[dict[str, Any]]:
        """One row per finished evaluation of this training run's model, oldest first."""
        children = client.search_runs(
            [experiment_id], order_by=["attributes.start_time ASC"],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`{KIND_TAG}` = 'evaluation' "
                          "and attributes.status = 'FINISHED'")
        return [{"run_id": c.info.run_id, "name": c.info.run_name, "test_set": c.data.params.get("test_set"),
                 "decode": {k[len("decode."):]: v for k, v in c.data.params.items() if k.startswith("decode.")},
                 **{k: c.data.metrics[k] for k in sorted(c.data.metrics)}} for c in children]
