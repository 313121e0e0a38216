"""End to end: a corpus with its own validation set and named test sets, through the real ``dvc repro``.

Official sets are normalised but never filtered; a TAB inside a sentence of a two-file set is
whitespace; a URL test set is served from $SEQ2SEQ_MIRROR; every test set gets its own scores
in metrics/ and MLflow; adding a test set decodes and scores only that one.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import sys

import pytest

from tests.conftest import synthetic_pairs, write_tsv
from tests.helpers import evaluation_runs, training_runs
from tests.pipeline_repo import make_repo, read_params, run, write_params

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out

DVC = [sys.executable, "-m", "dvc"]


def ran_stages(proc) -> set[str]:
    return {line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("official")
    (root / "repo").mkdir()
    mirror = root / "mirror"
    mirror.mkdir()
    repo, env = make_repo(root / "repo", {"SEQ2SEQ_MIRROR": str(mirror)})
    pairs = synthetic_pairs(480, seed=3)
    train, valid, test_a, test_b, test_c = pairs[:360], pairs[360:390], pairs[390:420], pairs[420:450], pairs[450:]
    (repo / "corpus" / "tiny.tsv").unlink()
    (repo / "corpus" / "train.en.gz").write_bytes(gzip.compress("".join(a + "\n" for a, _ in train).encode()))
    (repo / "corpus" / "train.es.gz").write_bytes(gzip.compress("".join(b + "\n" for _, b in train).encode()))
    write_tsv(repo / "corpus" / "valid.tsv", valid)
    official = repo / "testsets"
    official.mkdir()
    # test a: two plain files; one target holds a TAB inside the sentence; a repeated pair and a
    # second translation of one source stay in (official sets are never filtered or deduplicated)
    a_src = [s for s, _ in test_a] + [test_a[0][0], test_a[1][0]]
    a_tgt = [t for _, t in test_a] + [test_a[0][1], "Otra traducción."]
    a_tgt[2] = a_tgt[2].replace(" ", "\t", 1)
    (official / "a.en").write_text("".join(s + "\n" for s in a_src), encoding="utf-8")
    (official / "a.es").write_text("".join(t + "\n" for t in a_tgt), encoding="utf-8")
    # test b: a URL pinned by sha256, served from the mirror folder (the URL itself does not exist)
    body = gzip.compress("".join(f"{s}\t{t}\n" for s, t in test_b).encode())
    (mirror / "b.tsv.gz").write_bytes(body)
    write_tsv(official / "c.tsv", test_c)
    params = read_params(repo)
    params["data"].update({"source": "local", "path": "corpus/train.en.gz", "target_path": "corpus/train.es.gz",
                           "valid": {"path": "corpus/valid.tsv"}})
    params["train"]["subword_sampling"] = 0.5  # the train stage's subword regularization path too
    params["tests"] = {
        "a": {"path": "testsets/a.en", "target_path": "testsets/a.es"},
        "b": {"path": "file:///nonexistent/b.tsv.gz", "sha256": hashlib.sha256(body).hexdigest()},
    }
    write_params(repo, params)
    first = run([*DVC, "repro"], repo, env)
    return repo, env, first, {"a": len(a_src), "b": len(test_b), "c": len(test_c)}


def mlflow_evaluations(repo):
    """The one training run, and its evaluation runs by test set (one each)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("seq2seq").experiment_id
    (training,) = training_runs(client, experiment)
    evaluations = evaluation_runs(client, experiment, training.info.run_id)
    by_set = {r.data.params["test_set"]: r for r in evaluations}
    assert len(by_set) == len(evaluations)
    return client, by_set


def test_official_sets_go_through_whole_and_each_test_set_is_scored(repo):
    repo, env, first, sizes = repo
    assert "segmentations sampled anew each epoch" in first.stderr
    assert ran_stages(first) == {"download", "clean", "tokenize", "train", "export", "testset@a", "testset@b",
                                 "decode@a", "decode@b", "score@a", "score@b"}
    clean = json.loads((repo / "metrics/clean.json").read_text())
    assert (clean["train"], clean["valid"], clean["test"]) == (360, 30, 0)
    assert (repo / "data/clean/valid.tsv").read_bytes() == (repo / "corpus/valid.tsv").read_bytes()
    a_pairs = (repo / "data/tests/a/pairs.tsv").read_text(encoding="utf-8").splitlines()
    assert len(a_pairs) == sizes["a"] and a_pairs[2].count("\t") == 1  # the TAB became a space
    assert a_pairs[-2] == a_pairs[0]  # the repeated pair is kept
    report = json.loads((repo / "metrics/tests/a.json").read_text())
    assert report == {"pairs": sizes["a"], "distinct_sources": sizes["a"] - 2, "pairs_sharing_a_source": 4,
                      "sources_in_train": 0, "pairs_in_train": 0}
    provenance = json.loads((repo / "data/tests/b/provenance.json").read_text())
    assert provenance["served_from"].startswith("mirror: ") and provenance["lines"] == sizes["b"]
    for name in ("a", "b"):
        scores = json.loads((repo / f"metrics/scores/{name}.json").read_text())
        assert scores["test_set"] == name and scores["sentences"] == sizes[name]
        assert scores["signatures"]["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
        hyps = (repo / f"data/decode/{name}/hypotheses.txt").read_text(encoding="utf-8").splitlines()
        assert len(hyps) == sizes[name]
        by_length = (repo / f"metrics/scores_by_length/{name}.csv").read_text().splitlines()
        assert sum(int(row.split(",")[3]) for row in by_length[1:]) == sizes[name]
    multi = json.loads((repo / "metrics/scores/a.json").read_text())["multi_reference"]
    assert multi["sentences"] == sizes["a"] - 2 and multi["max_references"] == 2
    assert multi["signatures"]["bleu"].startswith("nrefs:var")
    assert "multi_reference" not in json.loads((repo / "metrics/scores/b.json").read_text())
    client, evaluations = mlflow_evaluations(repo)
    assert set(evaluations) == {"a", "b"}
    for name in ("a", "b"):
        scores = json.loads((repo / f"metrics/scores/{name}.json").read_text())
        record = evaluations[name]
        assert record.info.run_name.startswith(f"{name} · ")
        assert record.data.metrics["bleu"] == pytest.approx(scores["bleu"])
        assert record.data.metrics["chrf"] == pytest.approx(scores["chrf"])
        assert {"hypotheses.txt", "samples.json"} <= {f.path for f in client.list_artifacts(record.info.run_id)}
    assert "bleu_multi_ref" in evaluations["a"].data.metrics and "bleu_multi_ref" not in evaluations["b"].data.metrics
    assert json.loads(run([*DVC, "status", "--json"], repo, env).stdout) == {}


def test_adding_a_test_set_decodes_and_scores_only_it(repo):
    repo, env, _, sizes = repo
    before = {name: (repo / f"metrics/scores/{name}.json").read_bytes() for name in ("a", "b")}
    model = (repo / "data/model/weights.pt").read_bytes()
    params = read_params(repo)
    params["tests"]["c"] = {"path": "testsets/c.tsv"}
    write_params(repo, params)
    again = run([*DVC, "repro"], repo, env)
    assert ran_stages(again) == {"testset@c", "decode@c", "score@c"}
    assert (repo / "data/model/weights.pt").read_bytes() == model
    assert {name: (repo / f"metrics/scores/{name}.json").read_bytes() for name in ("a", "b")} == before
    assert json.loads((repo / "metrics/scores/c.json").read_text())["sentences"] == sizes["c"]
    _, evaluations = mlflow_evaluations(repo)
    assert set(evaluations) == {"a", "b", "c"}  # a and b are not recorded again
    assert {"bleu", "chrf", "ter"} <= set(evaluations["c"].data.metrics)
    assert json.loads(run([*DVC, "status", "--json"], repo, env).stdout) == {}


def test_random_split_test_set_with_an_official_valid_set_says_what_to_do(repo):
    repo, env, _, _ = repo
    import subprocess

    params = read_params(repo)
    params["tests"]["oops"] = {"random_split": True}
    write_params(repo, params)
    try:
        proc = subprocess.run([sys.executable, "-m", "stages.testset", "oops"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        del params["tests"]["oops"]
        write_params(repo, params)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("error: testset: params.yaml: tests.oops.random_split: got True; the clean stage "
                                   "made no random test split (data.valid names an official validation set): name "
                                   "this test set's files instead")
    assert not (repo / "data/tests/oops").exists()


def test_a_stage_started_without_or_with_an_unknown_test_set_says_which_there_are(repo):
    import subprocess

    repo, env, _, _ = repo
    for args, expected in (([], "error: score: usage: python -m stages.score NAME, NAME one of the test sets in "
                                "params.yaml: a, b"),
                           (["zz"], "error: score: params.yaml: tests.zz: no such test set; add it to tests, or use "
                                    "one of: a, b")):
        proc = subprocess.run([sys.executable, "-m", "stages.score", *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 1 and proc.stderr.strip().startswith(expected), proc.stderr


def changed_stages(repo, env) -> set[str]:
    return set(json.loads(run([*DVC, "status", "--json"], repo, env).stdout))


def test_editing_a_local_test_sets_reference_file_reruns_that_test_set_only(repo):
    """tests.a is read from local files: they are deps of testset@a, so a changed reference is seen."""
    repo, env, _, _ = repo
    before = {name: json.loads((repo / f"metrics/scores/{name}.json").read_text()) for name in ("a", "b")}
    model = (repo / "data/model/weights.pt").read_bytes()
    reference = repo / "testsets" / "a.es"
    lines = reference.read_text(encoding="utf-8").splitlines()
    reference.write_text("".join(f"Una frase distinta {n}.\n" if n % 2 else f"{t}\n" for n, t in enumerate(lines)),
                         encoding="utf-8")
    assert changed_stages(repo, env) == {"testset@a"}
    again = run([*DVC, "repro"], repo, env)
    assert ran_stages(again) == {"testset@a", "decode@a", "score@a"}
    after = json.loads((repo / "metrics/scores/a.json").read_text())
    assert after["chrf"] < before["a"]["chrf"]  # half the references no longer match anything
    assert json.loads((repo / "metrics/scores/b.json").read_text()) == before["b"]
    assert (repo / "data/model/weights.pt").read_bytes() == model
    assert changed_stages(repo, env) == set()


def test_editing_the_local_validation_set_reruns_from_the_download_stage(repo):
    repo, env, _, _ = repo
    valid = repo / "heldout" / "valid.tsv"  # outside corpus/, a folder the download stage declares anyway
    valid.parent.mkdir()
    valid.write_bytes((repo / "corpus" / "valid.tsv").read_bytes())
    params = read_params(repo)
    params["data"]["valid"]["path"] = "heldout/valid.tsv"
    write_params(repo, params)
    assert "train" not in ran_stages(run([*DVC, "repro"], repo, env))  # the same pairs from another file
    original = valid.read_bytes()
    valid.write_text(valid.read_text(encoding="utf-8").replace("El ", "Él ", 3), encoding="utf-8")
    assert changed_stages(repo, env) == {"download"}
    # Rerun up to clean only (the rest is DVC's own propagation, and slow): the edit arrives, and
    # DVC now sees the inputs of the stages that read the cleaned splits changed.
    assert ran_stages(run([*DVC, "repro", "clean"], repo, env)) == {"download", "clean"}
    assert (repo / "data/clean/valid.tsv").read_bytes() == valid.read_bytes()
    assert {"tokenize", "train"} <= changed_stages(repo, env)
    valid.write_bytes(original)  # back as it was: the module's later tests start from a clean status
    run([*DVC, "repro", "clean"], repo, env)
    assert changed_stages(repo, env) == set()


def test_a_local_file_that_dvc_yaml_does_not_declare_stops_the_stage_that_would_read_it(repo):
    """params.yaml points at other local files but dvc.yaml was not rewritten: the stage that would
    read them refuses in one line (DVC could not rerun it when they change) and writes nothing."""
    import subprocess

    repo, env, _, _ = repo
    params = read_params(repo)
    original = json.loads(json.dumps(params))
    params["tests"]["a"]["target_path"] = "testsets/a.es.new"
    params["data"]["valid"]["path"] = "testsets/valid-2.tsv"
    (repo / "testsets" / "a.es.new").write_bytes((repo / "testsets" / "a.es").read_bytes())
    (repo / "testsets" / "valid-2.tsv").write_bytes((repo / "corpus" / "valid.tsv").read_bytes())
    write_params(repo, params, declare_inputs=False)
    outputs = {p: p.read_bytes() for p in (repo / "data/tests/a/pairs.tsv", repo / "data/raw/valid.tsv")}
    try:
        runs = {stage: subprocess.run([sys.executable, "-m", *stage.split()], cwd=repo, env=env,
                                      capture_output=True, text=True, timeout=300)
                for stage in ("stages.testset a", "stages.download")}
    finally:
        write_params(repo, original)
    assert runs["stages.testset a"].stderr.strip() == (
        "error: testset: dvc.yaml: testset@a does not list testsets/a.es.new (tests.a.target_path) among its deps "
        "(params.yaml changed since dvc.yaml was written), so DVC cannot keep its scores up to date; run "
        "`python tools/stage_deps.py`, then dvc repro")
    assert runs["stages.download"].stderr.strip() == (
        "error: download: dvc.yaml: the download stage does not list testsets/valid-2.tsv (data.valid.path) among its "
        "deps (params.yaml changed since dvc.yaml was written), so DVC cannot see it change; run "
        "`python tools/stage_deps.py`, then dvc repro")
    assert all(proc.returncode == 1 for proc in runs.values())
    assert {p: p.read_bytes() for p in outputs} == outputs
    assert changed_stages(repo, env) == set()
