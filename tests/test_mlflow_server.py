"""MLflow the way teams run it: a real ``mlflow server``, ``mlflow models serve``, and ``dvc exp run --temp``."""
from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import evaluation_runs, training_runs
from tests.pipeline_repo import make_repo, read_params, run, write_params

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out

MLFLOW = [sys.executable, "-m", "mlflow"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not come up in {seconds} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path) -> Iterator[str]:
    """``mlflow server`` on a free port of 127.0.0.1; yields its URL, stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        MLFLOW + ["server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                  "--backend-store-uri", backend_store_uri, "--artifacts-destination", str(artifacts)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", proc)
        yield url
    finally:
        stop(proc)


def seq2seq_runs(tracking_uri: str, kind: str = "training") -> list:
    """The training (or evaluation) runs of the pipeline's MLflow experiment at ``tracking_uri``."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("seq2seq").experiment_id
    return (training_runs if kind == "training" else evaluation_runs)(client, experiment)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A tracking server on 127.0.0.1 (SQLite backend, artifacts in a temporary folder)."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts") as url:
        yield url


@pytest.fixture(scope="module")
def tracked_repo(server, tmp_path_factory):
    repo, env = make_repo(tmp_path_factory.mktemp("pipeline-server"), {"MLFLOW_TRACKING_URI": server})
    run([sys.executable, "-m", "dvc", "repro"], repo, env)
    return repo, env


def test_pipeline_logs_to_a_real_tracking_server(server, tracked_repo):
    import mlflow

    repo, _ = tracked_repo
    assert not (repo / "mlflow.db").exists()  # MLFLOW_TRACKING_URI wins over the default store
    client = mlflow.MlflowClient(tracking_uri=server)
    runs = seq2seq_runs(server)
    assert len(runs) == 1
    run_ = runs[0]
    assert run_.data.params["model.hidden_size"] == "32"
    assert {"valid_loss", "best_valid_loss"} <= set(run_.data.metrics)
    (evaluation,) = seq2seq_runs(server, "evaluation")
    assert evaluation.data.tags["mlflow.parentRunId"] == run_.info.run_id
    assert {"bleu", "chrf", "ter"} <= set(evaluation.data.metrics)
    assert {"hypotheses.txt", "samples.json"} <= {f.path for f in client.list_artifacts(evaluation.info.run_id)}
    bundle = json.loads((repo / "data/model/config.json").read_text())
    assert bundle["mlflow"] == {"run_id": run_.info.run_id, "experiment_id": run_.info.experiment_id,
                                "tracking_uri": server}
    mlflow.set_tracking_uri(server)
    model = mlflow.pyfunc.load_model(f"runs:/{run_.info.run_id}/model")
    assert len(model.predict(["The red cat sees the dog.", "The dog."])) == 2


def test_logged_model_serves_over_http(server, tracked_repo):
    import mlflow

    repo, env = tracked_repo
    run_id = json.loads((repo / "data/model/config.json").read_text())["mlflow"]["run_id"]
    port = free_port()
    proc = subprocess.Popen(MLFLOW + ["models", "serve", "-m", f"runs:/{run_id}/model", "--env-manager", "local",
                                      "-h", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", proc)
        body = json.dumps({"inputs": ["The red cat sees the dog.", "The old horse has the book."],
                           "params": {"beam": 1}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            predictions = json.loads(answer.read())["predictions"]
    finally:
        stop(proc)
    assert len(predictions) == 2 and all(isinstance(p, str) and p for p in predictions)
    mlflow.set_tracking_uri(server)
    local = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(
        ["The red cat sees the dog.", "The old horse has the book."], params={"beam": 1})
    assert predictions == local


def test_dvc_exp_run_temp_makes_a_tagged_run_in_the_repository_store(tmp_path):
    """Default store (SQLite at the repository root), an experiment run in a temporary copy."""
    (tmp_path / "repo").mkdir()
    repo, env = make_repo(tmp_path / "repo")
    run([sys.executable, "-m", "dvc", "repro"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "baseline"], repo, env)
    params = read_params(repo)
    hidden = params["model"]["hidden_size"]
    run([sys.executable, "-m", "dvc", "exp", "run", "--temp", "-n", "small", "-S", "model.hidden_size=16",
         "-S", "model.embedding_size=16"], repo, env)
    assert read_params(repo)["model"]["hidden_size"] == hidden  # the workspace is untouched
    store = f"sqlite:///{repo / 'mlflow.db'}"
    runs = seq2seq_runs(store)
    by_size = {r.data.params["model.hidden_size"]: r for r in runs}
    assert set(by_size) == {"32", "16"} and len(runs) == 2
    small = by_size["16"]
    assert small.data.tags.get("dvc.experiment") == "small" and small.info.run_name == "small"
    evaluations = seq2seq_runs(store, "evaluation")
    assert len(evaluations) == 2  # one per model: decode and score found the experiment's run
    (of_small,) = [e for e in evaluations if e.data.tags["mlflow.parentRunId"] == small.info.run_id]
    assert of_small.data.tags.get("dvc.experiment") == "small" and "bleu" in of_small.data.metrics
    shown = json.loads(run([sys.executable, "-m", "dvc", "exp", "show", "--json"], repo, env).stdout)
    assert "small" in json.dumps(shown)
    # The same params in the workspace: DVC restores train from its run cache, and no new
    # MLflow run appears; the restored bundle names the experiment's run.
    params["model"].update(hidden_size=16, embedding_size=16)
    write_params(repo, params)
    again = run([sys.executable, "-m", "dvc", "repro"], repo, env)
    assert "Running stage 'train'" not in again.stdout, again.stdout
    assert len(seq2seq_runs(store)) == 2
    assert json.loads((repo / "data/model/config.json").read_text())["mlflow"]["run_id"] == small.info.run_id
