"""kill -9 of a stage's own process while ``dvc repro`` runs it.

Only the stage is killed, never DVC: DVC then sees a failed command, as after a crash or
the OOM killer, and must not record anything. The rerun must start clean (download, clean,
tokenize) or resume (train), and nothing half-written may ever pass for a finished output.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.bundle.bundle import load_bundle
from seq2seq.training.checkpoint import CHECKPOINT_FILE
from tests.pipeline_repo import make_repo, read_params, run, write_params

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the stage process in /proc")]


def stage_pid(repo: Path, stage: str) -> int | None:
    """The pid of ``python -m stages.<stage>`` running in ``repo`` (DVC's child), if any."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if f"stages.{stage}".encode() in argv and Path(os.readlink(entry / "cwd")) == repo:
                return int(entry.name)
        except OSError:  # it ended while we looked
            continue
    return None


def temporary_outputs(repo: Path) -> list[Path]:
    """What an atomic write is building: ``.NAME.*.tmp`` beside a stage output."""
    return [*repo.glob("data/.*.tmp"), *repo.glob("data/*/.*.tmp"), *repo.glob("metrics/.*.tmp")]


def kill_stage_during_run(repo: Path, env: dict[str, str], stage: str, ready) -> str:
    """Run ``dvc repro <stage>``; kill -9 its stage process as soon as ``ready()`` holds.

    Returns how the kill landed ("killed" or "finished first") after checking DVC's answer."""
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", stage], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    pid = None
    while proc.poll() is None and time.monotonic() < deadline:
        pid = pid or stage_pid(repo, stage)
        if pid is not None and ready():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pid = None
            break
        time.sleep(0.001)
    output, _ = proc.communicate(timeout=300)
    if proc.returncode == 0:
        return "finished first"
    assert pid is not None, output
    assert f"failed to reproduce '{stage}'" in output or "ERROR" in output, output
    return "killed"


def changed_stages(repo: Path, env: dict[str, str]) -> set[str]:
    status = json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, env).stdout)
    return set(status)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    repo, env = make_repo(tmp_path_factory.mktemp("killed"))
    params = read_params(repo)
    params["train"].update({"epochs": 3, "validate_every": 8})
    write_params(repo, params)
    run([sys.executable, "-m", "dvc", "repro"], repo, env)
    return repo, env


# A param change per stage, so that `dvc repro <stage>` has work to do.
CHANGES = {
    "download": ("data", "max_download_mb", 900),
    "clean": ("clean", "valid_size", 31),
    "tokenize": ("tokenize", "vocab_size", 31),
}


@pytest.mark.parametrize("moment", ["while starting", "while writing"])
@pytest.mark.parametrize("stage", list(CHANGES))
def test_kill_9_of_a_stage_leaves_nothing_that_passes_for_finished(built, stage, moment):
    repo, env = built
    section, key, value = CHANGES[stage]
    ready = (lambda: True) if moment == "while starting" else (lambda: bool(temporary_outputs(repo)))
    for attempt in range(3):  # a stage can finish before the kill lands: try again with new work
        params = read_params(repo)
        new_value = value + attempt  # 31..33 stay within what the tiny corpus supports
        params[section][key] = new_value if params[section][key] != new_value else value - 1 - attempt
        write_params(repo, params)
        if kill_stage_during_run(repo, env, stage, ready) == "killed":
            break
    else:
        pytest.fail(f"{stage} finished 3 times before it could be killed {moment}")
    # DVC recorded nothing: the stage still has work to do.
    assert stage in changed_stages(repo, env)
    run([sys.executable, "-m", "dvc", "repro", stage], repo, env)
    assert stage not in changed_stages(repo, env)
    assert not temporary_outputs(repo) and not list(repo.glob("data/.*.old"))


def test_kill_9_of_train_resumes_and_ends_with_the_uninterrupted_model(built, tmp_path):
    repo, env = built
    params = read_params(repo)
    params["train"]["seed"] = params["train"]["seed"] + 1  # a new training run
    write_params(repo, params)
    checkpoint = repo / "data/checkpoints/train" / CHECKPOINT_FILE
    assert kill_stage_during_run(repo, env, "train", checkpoint.exists) == "killed"
    assert "train" in changed_stages(repo, env) and not (repo / "data/model").exists()
    second = run([sys.executable, "-m", "dvc", "repro", "train"], repo, env)
    assert "train: resuming from" in second.stderr, second.stderr
    # testset@test is stale too when an earlier test reran clean with other params (a new random split)
    assert changed_stages(repo, env) - {"testset@test"} == {"export", "decode@test", "score@test"}

    (tmp_path / "fresh").mkdir()
    fresh, fresh_env = make_repo(tmp_path / "fresh")
    write_params(fresh, params)
    run([sys.executable, "-m", "dvc", "repro", "train"], fresh, fresh_env)
    resumed, uninterrupted = load_bundle(repo / "data/model"), load_bundle(fresh / "data/model")
    for name, tensor in uninterrupted.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    resumed_history = (repo / "metrics/train_history.csv").read_text().splitlines()
    fresh_history = (fresh / "metrics/train_history.csv").read_text().splitlines()
    column = resumed_history[0].split(",").index("valid_loss")
    assert [r.split(",")[column] for r in resumed_history] == [r.split(",")[column] for r in fresh_history]
