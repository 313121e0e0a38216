"""Several seeds in the pipeline, end to end on a tiny corpus: one DVC stage per seed, each model scored
alone and all of them as an ensemble, with the mean ± sd; changing one seed reruns that seed's stages only."""
from __future__ import annotations

import csv
import dataclasses
import json
import statistics
import sys

import pytest

from tests.helpers import evaluation_runs, training_runs
from tests.pipeline_repo import make_repo, read_params, run, write_params

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    repo, env = make_repo(tmp_path_factory.mktemp("seeds"))
    params = read_params(repo)
    params["train"]["more_seeds"] = [7, 8]
    write_params(repo, params)  # tools/stage_deps.py: the ensemble stages for the list
    first = run([sys.executable, "-m", "dvc", "repro"], repo, env)
    return repo, env, first


def test_each_seed_is_a_stage_a_model_and_a_training_run(seeded, monkeypatch):
    repo, env, first = seeded
    for stage in ("train", "train_seed@7", "train_seed@8", "seed_scores@7", "seed_scores@8", "ensemble@test"):
        assert f"Running stage '{stage}'" in first.stdout, stage
    for seed in (7, 8):
        assert (repo / f"data/seeds/{seed}/model/weights.pt").is_file()
        assert json.loads((repo / f"metrics/seeds/{seed}/train.json").read_text())["epochs"] == 2
        assert (repo / f"data/seeds/{seed}/decode/test/hypotheses.txt").is_file()
    weights = {p.read_bytes() for p in [repo / "data/model/weights.pt", *repo.glob("data/seeds/*/model/weights.pt")]}
    assert len(weights) == 3  # three seeds, three models
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("seq2seq")
    runs = {r.data.params["train.seed"]: r for r in training_runs(client, experiment.experiment_id)}
    assert set(runs) == {"42", "7", "8"}
    assert runs["7"].info.run_name == "gru-luong-32-seed7"
    first_model = runs["42"].info.run_id
    members = [r for r in evaluation_runs(client, experiment.experiment_id, first_model)
               if "ensemble.members" in r.data.params]
    (ensemble,) = members
    assert ensemble.info.run_name == "test · beam 2 · ensemble of 3"
    assert ensemble.data.params["ensemble.members"] == "; ".join(
        f"seed {s}: run {runs[s].info.run_id}" for s in ("42", "7", "8"))
    assert len(evaluation_runs(client, experiment.experiment_id, runs["7"].info.run_id)) == 1


def test_the_ensemble_sits_beside_each_model_and_their_mean_and_sd(seeded):
    repo, _, _ = seeded
    record = json.loads((repo / "metrics/ensemble/test.json").read_text())
    single = {"42": json.loads((repo / "metrics/scores/test.json").read_text())["bleu"]}
    single |= {s: json.loads((repo / f"metrics/seeds/{s}/scores.json").read_text())["tests"]["test"]["bleu"]
               for s in ("7", "8")}
    assert {s: v["bleu"] for s, v in record["single_models"]["seeds"].items()} == single
    assert record["single_models"]["bleu"]["mean"] == pytest.approx(statistics.mean(single.values()), abs=1e-4)
    assert record["single_models"]["bleu"]["sd"] == pytest.approx(statistics.stdev(single.values()), abs=1e-4)
    assert record["ensemble"]["members"][0].startswith("seed 42") and len(record["ensemble"]["members"]) == 3
    hypotheses = (repo / "data/ensemble/test/hypotheses.txt").read_text().splitlines()
    alignments = (repo / "data/ensemble/test/alignments.txt").read_text().splitlines()
    assert len(hypotheses) == len(alignments) == record["ensemble"]["sentences"]
    for text, line in zip(hypotheses, alignments):
        assert len(line.split()) == len(text.split())
    minutes = {}
    for seed, history in (("42", "metrics/train_history.csv"), ("7", "metrics/seeds/7/train_history.csv"),
                          ("8", "metrics/seeds/8/train_history.csv")):
        with open(repo / history, newline="") as fh:
            minutes[seed] = sum(float(row["seconds"]) for row in csv.DictReader(fh)) / 60
    assert {s: v["training_minutes"] for s, v in record["single_models"]["seeds"].items()} == pytest.approx(
        minutes, abs=0.05)
    assert record["ensemble"]["training_minutes"] == pytest.approx(sum(minutes.values()), abs=0.1)


def test_the_ensemble_of_the_first_two_models_translates_as_those_two_models(seeded):
    repo, _, _ = seeded
    from seq2seq.data.clean import read_split
    from seq2seq.decoding.load import load_translator
    from seq2seq.params.config import load_params
    from seq2seq.reporting.scoring import score_corpus

    record = json.loads((repo / "metrics/ensemble/test.json").read_text())
    (first_two,) = record["smaller_ensembles"]  # three models: the first two, then all of them
    assert first_two["seeds"] == [42, 7]
    params = load_params(repo / "params.yaml")
    test = read_split(repo / "data/tests/test/pairs.tsv")
    translator = load_translator([repo / "data/model", repo / "data/seeds/7/model"],
                                 **dataclasses.asdict(params.decode.search))
    found = translator.translate(list(test["source"]))
    assert (repo / "data/ensemble/test/first_2.txt").read_text(encoding="utf-8").splitlines() == found
    assert first_two["bleu"] == score_corpus(found, list(test["target"]), params.score)["bleu"]


def test_changing_one_seed_reruns_that_seeds_stages_and_the_ensemble_only(seeded):
    repo, env, _ = seeded
    params = read_params(repo)
    params["train"]["more_seeds"] = [7, 9]
    write_params(repo, params)
    changed = set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout))
    assert {"train_seed@9", "seed_scores@9", "ensemble@test"} <= changed
    assert not changed & {"train", "train_seed@7", "seed_scores@7", "decode@test", "score@test"}
    again = run([sys.executable, "-m", "dvc", "repro"], repo, env)
    ran = {line.split("'")[1] for line in again.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"train_seed@9", "seed_scores@9", "ensemble@test"}
    record = json.loads((repo / "metrics/ensemble/test.json").read_text())
    assert set(record["single_models"]["seeds"]) == {"42", "7", "9"}
    assert json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout) == {}
