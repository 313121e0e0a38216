"""Every evaluation is its own MLflow record: a model x a test set x decode settings, a child of the
training run that made the model, never overwritten; sweeps from DVC's queue keep them apart."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import evaluation_runs, training_runs
from tests.pipeline_repo import make_repo, run

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out

DVC = [sys.executable, "-m", "dvc"]


def store(repo: Path):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    return client, client.get_experiment_by_name("seq2seq").experiment_id


def committed_baseline(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "repo").mkdir()
    repo, env = make_repo(tmp_path / "repo")
    run([*DVC, "repro"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "baseline"], repo, env)
    return repo, env


def summary(client, run_id: str) -> list[dict]:
    return json.loads(Path(client.download_artifacts(run_id, "evaluations.json")).read_text())


def test_another_decode_setting_adds_an_evaluation_and_keeps_the_first(tmp_path):
    repo, env = committed_baseline(tmp_path)
    client, experiment = store(repo)
    (training,) = training_runs(client, experiment)
    (first,) = evaluation_runs(client, experiment)
    assert first.info.run_name == "test · beam 2" and first.data.params["decode.beam_width"] == "2"
    assert first.data.params["model.cell"] == "gru" and first.data.params["model.hidden_size"] == "32"

    out = run([*DVC, "exp", "run", "-n", "greedy", "-S", "decode.beam_width=1"], repo, env)
    assert "Running stage 'train'" not in out.stdout  # the model is the same: only decode and score rerun
    assert len(training_runs(client, experiment)) == 1
    evaluations = {r.info.run_id: r for r in evaluation_runs(client, experiment, training.info.run_id)}
    assert len(evaluations) == 2
    again = evaluations.pop(first.info.run_id)  # the beam-2 evaluation, as it was
    assert (again.data.params, again.data.metrics, again.info.end_time) == (
        first.data.params, first.data.metrics, first.info.end_time)
    (greedy,) = evaluations.values()
    assert greedy.info.run_name == "test · greedy" and greedy.data.params["decode.beam_width"] == "1"
    assert greedy.data.tags["dvc.experiment"] == "greedy" and "bleu" in greedy.data.metrics
    assert [row["run_id"] for row in summary(client, training.info.run_id)] == [first.info.run_id, greedy.info.run_id]

    # The same evaluation again (a forced rerun of score) adds nothing, and neither does going back
    # to beam 2, which DVC restores from its run cache without running decode or score.
    run([*DVC, "repro", "-f", "-s", "score@test"], repo, env)
    assert len(evaluation_runs(client, experiment)) == 2
    back = run([*DVC, "exp", "run", "-S", "decode.beam_width=2"], repo, env)
    assert "Running stage 'score@test'" not in back.stdout, back.stdout
    assert len(evaluation_runs(client, experiment)) == 2


def wait_for_queue(repo: Path, env: dict[str, str], timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run([*DVC, "queue", "status"], repo, env).stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(3)
    pytest.fail(f"the DVC queue did not finish in {timeout:.0f} s:\n{status}")


def test_queued_grid_gives_one_training_run_per_model_and_one_evaluation_per_setting(tmp_path):
    """The 2x2 grid of the issue, run by two queue workers at once: the GRU experiments reuse the
    baseline's model (DVC's run cache), the two LSTM experiments share one training run."""
    repo, env = committed_baseline(tmp_path)
    run([*DVC, "exp", "run", "--queue", "-S", "model.cell=gru,lstm", "-S", "decode.beam_width=1,3"], repo, env)
    run([*DVC, "queue", "start", "-j", "2"], repo, env)
    status = wait_for_queue(repo, env)
    assert status.count("Success") == 4, status
    client, experiment = store(repo)
    trainings = {r.data.params["model.cell"]: r for r in training_runs(client, experiment)}
    assert sorted(trainings) == ["gru", "lstm"] and len(training_runs(client, experiment)) == 2
    evaluations = evaluation_runs(client, experiment)
    grid = {(trainings_cell, r.data.params["decode.beam_width"])
            for r in evaluations
            for trainings_cell, t in trainings.items() if r.data.tags["mlflow.parentRunId"] == t.info.run_id}
    # the baseline's beam-2 evaluation plus the four of the grid, each under its own model's run
    assert len(evaluations) == 5 and grid == {("gru", "2"), ("gru", "1"), ("gru", "3"), ("lstm", "1"), ("lstm", "3")}
    by_run = {t.info.run_id: t for t in trainings.values()}
    for r in evaluations:
        assert r.info.status == "FINISHED" and "bleu" in r.data.metrics
        # the model's defining params beside the decode params, as its training run logged them
        model = by_run[r.data.tags["mlflow.parentRunId"]].data.params
        for key in ("model.cell", "model.attention", "model.hidden_size", "model.layers", "model.bidirectional"):
            assert r.data.params[key] == model[key], key
        assert r.info.run_name == f"test · {'greedy' if r.data.params['decode.beam_width'] == '1' else 'beam ' + r.data.params['decode.beam_width']}"
    queued = [r for r in evaluations if r.data.params["decode.beam_width"] != "2"]
    assert all(r.data.tags.get("dvc.experiment") for r in queued)  # each tagged with its DVC experiment
    assert len({r.data.tags["dvc.experiment"] for r in queued}) == 4
    names = json.dumps(json.loads(run([*DVC, "exp", "show", "--json"], repo, env).stdout))
    assert all(r.data.tags["dvc.experiment"] in names for r in queued)
