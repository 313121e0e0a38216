"""What a team shares: a DVC remote for data and models, and an MLflow server on PostgreSQL."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.pipeline_repo import make_repo, run
from tests.test_mlflow_server import free_port, mlflow_server, seq2seq_runs, stop

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out

DVC = [sys.executable, "-m", "dvc"]


def test_push_to_a_remote_then_pull_in_a_fresh_clone_needs_no_recomputing(tmp_path):
    (tmp_path / "repo").mkdir()
    repo, env = make_repo(tmp_path / "repo")
    run(DVC + ["repro"], repo, env)
    run(DVC + ["remote", "add", "-d", "shared", str(tmp_path / "remote")], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "a trained pipeline"], repo, env)
    pushed = run(DVC + ["push"], repo, env)
    assert "pushed" in pushed.stdout.lower(), pushed.stdout

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    assert not (clone / "data").exists()
    run(DVC + ["pull"], clone, env)
    assert json.loads(run(DVC + ["status", "--json"], clone, env).stdout) == {}
    again = run(DVC + ["repro"], clone, env)
    assert "Running stage" not in again.stdout, again.stdout  # nothing is recomputed
    assert (clone / "data/decode/test/hypotheses.txt").read_bytes() == (repo / "data/decode/test/hypotheses.txt").read_bytes()
    seq2seq = shutil.which("seq2seq", path=env["PATH"])
    assert seq2seq, "the seq2seq command is installed with the package"
    translated = subprocess.run([seq2seq, "translate", "--model", "data/model", "--beam", "2"], cwd=clone, env=env,
                                input="a b c\n\nd e\n", capture_output=True, text=True, timeout=120)
    assert translated.returncode == 0, translated.stderr
    assert len(translated.stdout.split("\n")) == 4 and translated.stdout.split("\n")[1] == ""


def postgres_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@pytest.fixture
def postgres(tmp_path_factory):
    """A PostgreSQL server on 127.0.0.1 in a temporary folder; yields its SQLAlchemy URI
    (database ``mlflow``, driver psycopg2).

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user."""
    pytest.importorskip("psycopg2", reason="psycopg2 (the test extra) talks to PostgreSQL")
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)")
    demote, owner = None, None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("as root PostgreSQL needs the 'postgres' user (apt-get install postgresql creates it)")

        def demote() -> None:
            os.setgid(owner.pw_gid)
            os.setgroups([])
            os.setuid(owner.pw_uid)
    folder = Path(tempfile.mkdtemp(prefix="seq2seq-pg-"))  # outside pytest's root-only tmp folders
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    subprocess.run([str(binaries / "initdb"), "-D", str(folder / "data"), "-U", "mlflow", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, preexec_fn=demote, cwd=folder)
    port = free_port()
    server = subprocess.Popen([str(binaries / "postgres"), "-D", str(folder / "data"), "-h", "127.0.0.1",
                               "-p", str(port), "-k", str(folder), "-F"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=demote,
                              cwd=folder)
    import psycopg2

    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1][-2000:]
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=port, user="mlflow", dbname="postgres")
                break
            except psycopg2.OperationalError:
                assert time.monotonic() < deadline, "PostgreSQL did not start in 60 s"
                time.sleep(0.3)
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE mlflow")
        connection.close()
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        stop(server)
        shutil.rmtree(folder, ignore_errors=True)


def test_pipeline_logs_to_an_mlflow_server_backed_by_postgresql(postgres, tmp_path, monkeypatch):
    import mlflow
    import psycopg2

    (tmp_path / "repo").mkdir()
    with mlflow_server(postgres, tmp_path / "artifacts") as url:
        repo, env = make_repo(tmp_path / "repo", {"MLFLOW_TRACKING_URI": url})
        run(DVC + ["repro"], repo, env)
        runs = seq2seq_runs(url)
        assert len(runs) == 1
        record = runs[0]
        client = mlflow.MlflowClient(tracking_uri=url)
        assert record.data.params["model.cell"] == "gru"
        assert {"valid_loss", "best_valid_loss"} <= set(record.data.metrics)
        (evaluation,) = seq2seq_runs(url, "evaluation")
        assert {"bleu", "chrf", "ter"} <= set(evaluation.data.metrics)
        assert [m.step for m in client.get_metric_history(record.info.run_id, "valid_loss")]
        assert "train_history.csv" in {a.path for a in client.list_artifacts(record.info.run_id)}
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        mlflow.set_tracking_uri(url)
        model = mlflow.pyfunc.load_model(f"runs:/{record.info.run_id}/model")
        assert len(model.predict(["a b c", ""])) == 2
        # The run lives in PostgreSQL, not in a file store beside the pipeline.
        with psycopg2.connect(postgres.replace("+psycopg2", "")) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT run_uuid, status FROM runs")
            assert sorted(cursor.fetchall()) == sorted([(record.info.run_id, "FINISHED"),
                                                        (evaluation.info.run_id, "FINISHED")])
        assert not (repo / "mlflow.db").exists()
