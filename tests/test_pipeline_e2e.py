"""End to end: the real ``dvc repro`` on a tiny corpus, in a temporary git repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seq2seq.decoding.translator import Translator
from tests.helpers import evaluation_runs, training_runs
from tests.pipeline_repo import make_repo, run

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo, env = make_repo(tmp_path_factory.mktemp("pipeline"))
    first = run([sys.executable, "-m", "dvc", "repro"], repo, env)
    return repo, env, first


def test_a_successful_run_prints_its_own_lines_only(repo):
    """Progress and results of each stage; not MLflow's INFO lines, warnings or download bars."""
    _, _, first = repo
    output = first.stdout + first.stderr
    for noise in ("INFO mlflow", "INFO  [alembic", "UserWarning", "WARNING mlflow", "Downloading artifacts",
                  "warning: MLflow"):
        assert noise not in output, f"{noise!r} in the output of dvc repro:\n{output}"
    assert "score test: BLEU" in first.stdout and "MLflow evaluation run" in first.stdout


def test_every_stage_writes_well_formed_outputs(repo):
    repo, env, first = repo
    for stage in ("download", "clean", "tokenize", "train", "export", "testset@test", "decode@test", "score@test"):
        assert f"Running stage '{stage}'" in first.stdout
    provenance = json.loads((repo / "data/raw/provenance.json").read_text())
    assert provenance["source"] == "local" and len(provenance["sha256"]) == 64
    report = json.loads((repo / "metrics/clean.json").read_text())
    assert report["input_pairs"] == 400 and report["train"] + report["valid"] + report["test"] == 400
    for name in ("src.spm.model", "tgt.spm.model", "train/src_ids.npy", "valid/tgt_offsets.npy"):
        assert (repo / "data/tokens" / name).stat().st_size > 0
    for name in ("config.json", "weights.pt", "src.spm.model", "tgt.spm.model"):
        assert (repo / "data/model" / name).is_file()
    assert (repo / "data/tests/test/pairs.tsv").read_bytes() == (repo / "data/clean/test.tsv").read_bytes()
    test_report = json.loads((repo / "metrics/tests/test.json").read_text())
    assert test_report["pairs"] == report["test"] and test_report["pairs_in_train"] == 0
    hypotheses = (repo / "data/decode/test/hypotheses.txt").read_text().split("\n")[:-1]
    assert len(hypotheses) == report["test"]
    scores = json.loads((repo / "metrics/scores/test.json").read_text())
    assert scores["test_set"] == "test" and scores["sentences"] == report["test"]
    for key in ("bleu", "chrf", "ter"):
        assert isinstance(scores[key], float) and scores["signatures"][key]
    assert scores["decode"]["beam_width"] == 2
    by_length = (repo / "metrics/scores_by_length/test.csv").read_text().splitlines()
    assert by_length[0] == "bucket,min_words,max_words,sentences,bleu,chrf"
    assert sum(int(row.split(",")[3]) for row in by_length[1:]) == report["test"]
    for png in ("data/score/test/scores_by_length.png", "data/decode/test/attention/01.png",
                "data/decode/test/attention/04.png"):
        assert (repo / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    history = (repo / "metrics/train_history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 3
    summary = json.loads((repo / "metrics/train.json").read_text())
    assert summary["epochs"] == 2 and summary["parameters"] > 0


def test_mlflow_holds_a_training_run_and_its_evaluation(repo, monkeypatch):
    repo, env, _ = repo
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("seq2seq")
    runs = training_runs(client, experiment.experiment_id)
    assert len(runs) == 1 and len(client.search_runs([experiment.experiment_id])) == 2
    run = runs[0]
    assert run.info.run_name == "gru-luong-32"
    assert run.data.params["model.hidden_size"] == "32"
    assert run.data.params["train.epochs"] == "2"
    for key in ("valid_loss", "train_loss", "best_valid_loss"):
        assert key in run.data.metrics, key
    assert not any(k.startswith(("test", "decode.")) for k in (*run.data.metrics, *run.data.params, *run.data.tags))
    (evaluation,) = evaluation_runs(client, experiment.experiment_id, run.info.run_id)
    scores = json.loads((repo / "metrics/scores/test.json").read_text())
    assert evaluation.info.run_name == "test · beam 2" and evaluation.data.params["decode.beam_width"] == "2"
    assert evaluation.data.params["test_set"] == "test"
    assert {k: round(evaluation.data.metrics[k], 6) for k in ("bleu", "chrf", "ter")} == {
        k: round(scores[k], 6) for k in ("bleu", "chrf", "ter")}
    (dataset,) = evaluation.inputs.dataset_inputs
    assert dataset.dataset.name == "test"
    summary = json.loads((Path(client.download_artifacts(run.info.run_id, "evaluations.json"))).read_text())
    assert [row["run_id"] for row in summary] == [evaluation.info.run_id]
    logged, onnx = sorted(mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list"),
                          key=lambda m: m.name)
    assert (logged.name, onnx.name) == ("model", "onnx") and onnx.source_run_id == run.info.run_id
    assert {m.key for m in logged.metrics} >= {"bleu", "chrf", "ter"}
    assert {m.dataset_name for m in logged.metrics if m.key == "bleu"} == {"test"}
    assert len(client.get_metric_history(run.info.run_id, "valid_loss")) == 2
    bundle = json.loads((repo / "data/model/config.json").read_text())
    assert bundle["mlflow"]["run_id"] == run.info.run_id
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    out = model.predict(["The red cat sees the dog."])
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], str)
    assert model.predict(["The red cat sees the dog."], params={"beam": 1})[0] == \
        Translator.load(repo / "data/model", device="cpu").translate(["The red cat sees the dog."], beam=1)[0]
    signature = model.metadata.signature
    assert signature is not None and signature.inputs.to_dict()[0]["type"] == "string"
    assert "beam" in {p.name for p in signature.params.params}
    artifacts = {f.path for f in client.list_artifacts(evaluation.info.run_id)}
    assert {"hypotheses.txt", "scores.json", "scores_by_length.csv", "scores_by_length.png",
            "samples.json", "attention"} <= artifacts, artifacts
    assert len(client.list_artifacts(evaluation.info.run_id, "attention")) == 4
    datasets = {tag.value: d.dataset for d in run.inputs.dataset_inputs for tag in d.tags if tag.key == "mlflow.data.context"}
    assert set(datasets) == {"training", "validation"}
    import hashlib
    assert datasets["training"].digest == hashlib.sha256((repo / "data/clean/train.tsv").read_bytes()).hexdigest()[:32]


def test_the_exported_model_translates_as_the_trained_one_and_its_mlflow_model_needs_no_torch(repo):
    """data/export/ (the export stage) and the training run's MLflow model "onnx", loaded and
    asked to predict in a process where torch cannot be imported, give the PyTorch model's output."""
    repo, env, _ = repo
    sentences = ["The red cat sees the dog.", "The old horse has the book."]
    expected = Translator.load(repo / "data/model", device="cpu").translate(sentences)
    exported = Translator.load(repo / "data/export")
    assert type(exported).__name__ == "OnnxTranslator" and exported.translate(sentences) == expected
    info = json.loads((repo / "data/export/export.json").read_text())
    run_id = json.loads((repo / "data/model/config.json").read_text())["mlflow"]["run_id"]
    script = (
        "import sys, json, mlflow\n"
        "sys.modules['torch'] = None  # import torch fails\n"
        f"mlflow.set_tracking_uri({'sqlite:///' + str(repo / 'mlflow.db')!r})\n"
        "experiment = mlflow.get_experiment_by_name('seq2seq').experiment_id\n"
        f"(m,) = mlflow.search_logged_models([experiment], filter_string=\"source_run_id = '{run_id}' and name = "
        "'onnx'\", output_format='list')\n"
        f"print(json.dumps(mlflow.pyfunc.load_model(m.model_uri).predict({sentences!r})))\n"
        "assert not any(name == 'torch' or name.startswith('torch.') for name, mod in sys.modules.items() if mod)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=300,
                          env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected
    assert info["precision"] == "fp32" and info["attention"] is True


def test_dvc_metrics_and_plots_render(repo):
    repo, env, _ = repo
    metrics = json.loads(run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], repo, env).stdout)
    text = json.dumps(metrics)
    for key in ("best_valid_loss", "bleu", "input_pairs"):
        assert key in text, key
    plots = run([sys.executable, "-m", "dvc", "plots", "show", "--json"], repo, env).stdout
    for name in ("loss", "valid_scores", "metrics/scores_by_length/test.csv"):
        assert name in plots, name


def test_reporting_params_retrain_nothing(repo):
    """train.log_every, train.checkpoint_every, train.snapshots and mlflow.experiment_name cannot change the model."""
    repo, env, _ = repo
    original = (repo / "params.yaml").read_text(encoding="utf-8")
    params = yaml.safe_load(original)
    params["train"]["log_every"] += 7
    params["train"]["checkpoint_every"] += 11
    params["train"]["snapshots"] = not params["train"]["snapshots"]
    params["mlflow"]["experiment_name"] += "-renamed"
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        assert json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout) == {}
        params["train"]["label_smoothing"] += 0.05  # while a key that shapes the model retrains
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        assert "train" in json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout)
    finally:
        (repo / "params.yaml").write_text(original, encoding="utf-8")


def test_status_clean_then_decode_param_reruns_decode_and_score_only(repo):
    repo, env, _ = repo
    status = run([sys.executable, "-m", "dvc", "status", "--json"], repo, env)
    assert json.loads(status.stdout) == {}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["decode"]["beam_width"] = 3
    params["decode"]["nbest"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    changed = json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout)
    assert set(changed) == {"decode@test"}  # score follows once decode's output changes
    again = run([sys.executable, "-m", "dvc", "repro"], repo, env)
    ran = {line.split("'")[1] for line in again.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"decode@test", "score@test"}
    scores = json.loads((repo / "metrics/scores/test.json").read_text())
    assert scores["decode"]["beam_width"] == 3
    nbest = (repo / "data/decode/test/nbest.tsv").read_text(encoding="utf-8").splitlines()
    best = (repo / "data/decode/test/hypotheses.txt").read_text(encoding="utf-8").splitlines()
    assert nbest[0] == "line\trank\tscore\tlog_prob\ttranslation" and len(nbest) == 1 + 2 * len(best)
    assert [row.split("\t")[4] for row in nbest[1::2]] == best  # rank 1 is the hypothesis scored
    assert json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout) == {}


def test_bad_param_fails_with_one_line_and_keeps_outputs(repo):
    repo, env, _ = repo
    before = (repo / "data/decode/test/hypotheses.txt").read_bytes()
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["decode"]["beam_width"] = 0
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "stages.decode", "test"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: decode: params.yaml: decode.beam_width: got 0; use an integer >= 1"
    assert (repo / "data/decode/test/hypotheses.txt").read_bytes() == before
    params["decode"]["beam_width"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def test_disk_full_is_one_line_and_keeps_outputs(repo):
    """Writes beyond a file-size limit fail as on a full disk (EFBIG instead of ENOSPC)."""
    import resource
    import signal

    repo, env, _ = repo

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get the error, not the signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    for stage, output in (("decode", "data/decode/test/hypotheses.txt"), ("tokenize", "data/tokens/src.spm.model")):
        before = (repo / output).read_bytes()
        proc = subprocess.run([sys.executable, "-m", f"stages.{stage}", *(["test"] if stage == "decode" else [])], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=300, preexec_fn=small_files)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith(f"error: {stage}: ") and "File too large" in lines[-1], proc.stderr
        assert "Traceback" not in proc.stderr
        assert (repo / output).read_bytes() == before
        leftovers = [p for p in (repo / "data").rglob("*.tmp")] + [p for p in (repo / "data").glob(".*tmp*")]
        assert not leftovers, leftovers
    assert json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout) == {}



def read_only_command(folder: Path, command: list[str]) -> list[str] | None:
    """``command`` run with ``folder`` read-only: a read-only bind mount in a private mount
    namespace (root ignores permissions), or plain permissions for other users."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return command
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "sh", "-c", f"mount --bind '{folder}' '{folder}'"], capture_output=True).returncode:
        return None
    script = f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}' && exec \"$@\""
    return ["unshare", "-m", "sh", "-c", script, "sh", *command]


def test_read_only_output_folder_is_one_line_and_keeps_outputs(tmp_path):
    """A stage whose output folder cannot be written: one line naming it, old outputs unchanged."""
    (tmp_path / "repo").mkdir()
    repo, env = make_repo(tmp_path / "repo")
    run([sys.executable, "-m", "dvc", "repro", "tokenize"], repo, env)
    before = {p: p.read_bytes() for p in (repo / "data/tokens").rglob("*") if p.is_file()}
    command = read_only_command(repo / "data", [sys.executable, "-m", "stages.tokenize"])
    if command is None:
        pytest.skip("as root a read-only folder needs a bind mount, and `unshare -m` is not permitted here")
    try:
        proc = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    finally:
        (repo / "data").chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: tokenize: data/tokens: ") and lines[0].endswith(
        ("Read-only file system; the file system is read-only: run from a writable checkout "
         "(outputs written before are unchanged)",
         "Permission denied; check the write permissions of that path (outputs written before are unchanged)")), lines[0]
    assert {p: p.read_bytes() for p in (repo / "data/tokens").rglob("*") if p.is_file()} == before
    assert not list((repo / "data").glob(".*.tmp"))
