"""kill -9 in the middle of ``dvc repro`` (download, clean, tokenize, train...): the rerun finishes cleanly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from seq2seq.clean import read_split
from seq2seq.subwords import load_encoded
from tests.pipeline_repo import make_repo, run


def test_kill_9_at_several_points_then_repro_finishes_clean(tmp_path):
    (tmp_path / "repo").mkdir()
    repo, env = make_repo(tmp_path / "repo")
    stages_seen = []
    for delay in (2.5, 5.0, 8.0, 12.0):
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is not None:
            break
        os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage it runs
        out = proc.communicate()[0]
        stages_seen.append([line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")])
        # Whatever exists now is either complete or not taken for finished: DVC still sees work to do.
        status = json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout)
        assert status, "an interrupted run must not look finished"
    assert any(stages_seen), "no run was interrupted: make the delays shorter"
    final = run([sys.executable, "-m", "dvc", "repro"], repo, env)
    assert "score" in final.stdout or "didn't change" in final.stdout
    assert json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout) == {}
    for name in ("train", "valid", "test"):
        assert len(read_split(repo / f"data/clean/{name}.tsv")) > 0
        assert len(load_encoded(repo / f"data/tokens/{name}.npz")) > 0
    assert len((repo / "data/decode/hypotheses.txt").read_text().splitlines()) == len(
        read_split(repo / "data/clean/test.tsv"))
    assert not list(repo.glob("data/**/*.tmp")) and not list(repo.glob("data/.*"))
