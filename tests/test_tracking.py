from pathlib import Path

import mlflow
import pytest

from seq2seq.core.mlflow_store import tracking_uri
from seq2seq.params.config import Params
from seq2seq.tracking.evaluations import EvaluationLog
from seq2seq.tracking.runs import TrainingRun


def test_store_is_sqlite_at_the_dvc_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri() == "http://127.0.0.1:5999"


def test_run_logs_params_and_validation_curves(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    from seq2seq.training.trainer import ValidationRecord

    with TrainingRun(Params(), "ab" * 32) as run:
        assert run.active
        for epoch in (1, 2):
            run.log_validation(ValidationRecord(epoch, epoch * 10, 3.0 / epoch, 2.0 / epoch, 7.0, float("nan"), 20.0, 1e-3,
                                      1.0, 1000.0, 5.0))
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    data = client.get_run(run.run_id).data
    assert data.params["model.cell"] == Params().model.cell
    assert "decode.beam_width" not in data.params  # decode settings are params of each evaluation run
    assert data.tags["data.sha256"] == "ab" * 32
    curve = client.get_metric_history(run.run_id, "valid_loss")
    assert [(m.step, m.value) for m in curve] == [(10, 2.0), (20, 1.0)]  # x = training step
    assert "valid_bleu" not in data.metrics  # NaN (not computed) is not logged


def test_unreachable_server_warns_once_and_carries_on(monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with TrainingRun(Params(), "0" * 64) as run:
        assert not run.active
        run.log_summary({"x": 1.0})  # a no-op, no second warning
    log = EvaluationLog("abc")
    assert log.record(None) is None and log.record(None) is None  # the second: a quiet no-op
    err = capsys.readouterr().err
    assert err.count("warning: MLflow:") == 2 and "127.0.0.1:9" in err


def test_invalid_tracking_uri_warns_once_and_carries_on(monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nonsense-scheme://somewhere")
    with TrainingRun(Params(), "0" * 64) as run:
        assert not run.active
        run.log_summary({"x": 1.0})
    err = capsys.readouterr().err
    assert err.count("warning: MLflow:") == 1 and "nonsense-scheme://somewhere" in err
    assert "training goes on" in err


def test_artifacts_go_beside_the_default_store_whichever_folder_a_stage_runs_in(tmp_path, monkeypatch):
    from seq2seq.core.mlflow_store import default_artifact_location, tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)  # a recipe's stage runs in recipes/NAME/, DVC_ROOT is the repository
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert default_artifact_location() == (tmp_path.resolve() / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert default_artifact_location() is None  # a tracking server decides


def test_a_recipes_run_keeps_its_artifacts_beside_the_root_store(tmp_path, monkeypatch):
    """A recipe's stages run in recipes/NAME/ (their own DVC project): the experiment they create keeps
    its artifacts in the repository's mlruns/, also after MLflow has set $MLFLOW_TRACKING_URI itself."""
    (tmp_path / ".git").mkdir()
    recipe = tmp_path / "recipes" / "r"
    recipe.mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(recipe))
    monkeypatch.chdir(recipe)
    from dataclasses import replace

    params = Params()
    params = replace(params, mlflow=replace(params.mlflow, experiment_name="recipe-r"))
    with TrainingRun(params, "cd" * 32) as run:
        assert run.run_id
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("recipe-r")
    assert experiment.artifact_location == (tmp_path.resolve() / "mlruns").as_uri()
    assert not (recipe / "mlruns").exists() and not (recipe / "mlflow.db").exists()


def test_a_locked_store_is_waited_for_and_other_errors_are_not():
    import sqlite3

    from seq2seq.tracking.store import StoreBusy, retry_locked

    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert retry_locked(locked_twice) == "done" and len(calls) == 3
    with pytest.raises(StoreBusy, match="stayed locked"):
        retry_locked(lambda: (_ for _ in ()).throw(sqlite3.OperationalError("database is locked")), wait=0.2)
    other = []
    with pytest.raises(ValueError):
        retry_locked(lambda: other.append(1) or (_ for _ in ()).throw(ValueError("no")))
    assert other == [1]  # not retried


def test_evaluations_are_named_and_keyed_by_their_settings():
    from seq2seq.tracking.evaluations import Evaluation, settings_label

    assert settings_label({"beam_width": 1}) == "greedy"
    assert settings_label({"beam_width": 5, "length_penalty": 1.0}) == "beam 5"
    assert settings_label({"beam_width": 5, "length_penalty": 0.6, "quantize": "int8"}) == "beam 5 α 0.6 int8"
    assert settings_label({"sampling": True, "temperature": 0.8, "top_k": 0, "top_p": 0.9}) == "sampling t=0.8 top-p 0.9"

    def evaluation(**decode):
        return Evaluation("test", "ab" * 32, {"beam_width": 5, **decode}, {"bleu_tokenize": "13a"}, {}, {}, None,
                          Path("pairs.tsv"))

    assert evaluation().name == "test · beam 5"
    assert evaluation().key("run1") == evaluation().key("run1")
    assert len({evaluation().key("run1"), evaluation().key("run2"), evaluation(beam_width=1).key("run1")}) == 3


def test_mlflow_warnings_and_info_lines_stay_off_the_output(monkeypatch, tmp_path, capsys):
    import warnings

    from seq2seq.tracking.store import NeverBreaks

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.delenv("SEQ2SEQ_DEBUG", raising=False)
    assert NeverBreaks()._attempt("x", lambda: warnings.warn("The specified dataset source can be ..."))
    with TrainingRun(Params(), "ab" * 32) as run:  # a new store: MLflow creates its tables (INFO lines)
        assert run.active
    captured = capsys.readouterr()
    assert "warning" not in captured.err.lower() and "INFO" not in captured.err, captured.err


def test_the_same_model_trained_twice_keeps_one_training_run(monkeypatch, tmp_path):
    """Two queue workers training the same params on the same data and code: the later record is
    deleted and both bundles name the earlier run; another model keeps its own."""
    store = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    with TrainingRun(Params(), "ab" * 32, model_key="same") as first:
        assert first.standing_run_id() == first.run_id  # the earliest: it stands for the model
    with TrainingRun(Params(), "ab" * 32, model_key="same") as again:
        assert again.standing_run_id() == first.run_id and not again.active
        again.log_summary({"x": 1.0})  # a quiet no-op once it has yielded
    with TrainingRun(Params(), "ab" * 32, model_key="other") as other:
        assert other.standing_run_id() == other.run_id
    client = mlflow.MlflowClient(tracking_uri=store)
    assert {r.info.run_id for r in client.search_runs([first.experiment_id])} == {first.run_id, other.run_id}
    assert client.get_run(again.run_id).info.lifecycle_stage == "deleted"
