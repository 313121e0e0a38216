"""kill -9 in the middle of each stage of ``dvc repro``: nothing looks finished that is not, and the rerun finishes."""
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


STAGE_OUTPUT = {"download": "data/raw", "clean": "data/clean", "tokenize": "data/tokens", "train": "data/model"}


def running_output(repo) -> str | None:
    """The output folder DVC holds a write lock on (the stage being run), from .dvc/tmp/rwlock."""
    try:
        locks = json.loads((repo / ".dvc" / "tmp" / "rwlock").read_text())
    except (OSError, ValueError):
        return None
    for path in locks.get("write", {}):
        for name, out in STAGE_OUTPUT.items():
            if path.endswith(out):
                return name
    return None


def test_kill_9_during_each_stage_then_repro_finishes_clean(tmp_path):
    (tmp_path / "repo").mkdir()
    repo, env = make_repo(tmp_path / "repo")
    killed_in = []
    for stage, delay in (("download", 0.3), ("clean", 0.5), ("tokenize", 0.5), ("train", 3.0)):
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and running_output(repo) != stage and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        if proc.poll() is not None:
            continue  # the whole pipeline finished first: nothing to interrupt
        killed_in.append(running_output(repo))
        os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage it runs
        proc.wait()
        # Whatever was written is complete or not taken for finished: DVC still sees work to do.
        status = json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout)
        assert status, f"a run killed in {killed_in[-1]} looks finished"
    assert {"download", "clean", "tokenize"} <= set(killed_in), killed_in
    run([sys.executable, "-m", "dvc", "repro"], repo, env)
    assert json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout) == {}
    for name in ("train", "valid", "test"):
        assert len(read_split(repo / f"data/clean/{name}.tsv")) > 0
        assert len(load_encoded(repo / f"data/tokens/{name}.npz")) > 0
    assert len((repo / "data/decode/hypotheses.txt").read_text().splitlines()) == len(
        read_split(repo / "data/clean/test.tsv"))
    assert not list(repo.glob("data/**/*.tmp")) and not list(repo.glob("data/.*"))
