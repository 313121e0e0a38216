import mlflow

from seq2seq.core.config import Params
from seq2seq.tracking.runs import TrainingRun
from seq2seq.tracking.store import RunLog, tracking_uri


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
    assert "decode.beam_width" not in data.params  # decode settings are tags of the score stage
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
    log = RunLog("abc")
    assert log.metrics({"test_bleu": 1.0}) is False
    assert log.tags({"x": 1}) is False and log.artifacts([]) is False  # after one failure: quiet no-ops
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
    from seq2seq.tracking.store import default_artifact_location, tracking_uri

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
