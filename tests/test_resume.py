"""Exact resume: a run killed with SIGKILL and rerun ends with the same weights as an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.training.checkpoint import CHECKPOINT_FILE, load_checkpoint

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parents[1]


def driver(checkpoints: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tests.resume_driver", str(checkpoints), str(out)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after_checkpoints(checkpoints: Path, out: Path, writes: int) -> None:
    """Start the driver, wait until the checkpoint has been (re)written ``writes`` times, then kill -9."""
    proc = driver(checkpoints, out)
    path = checkpoints / CHECKPOINT_FILE
    seen, last = 0, None
    deadline = time.monotonic() + 120
    while seen < writes and time.monotonic() < deadline:
        stamp = path.stat().st_mtime_ns if path.exists() else None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
        time.sleep(0.005)
    assert proc.poll() is None, "training ended before it could be killed: make the driver's run longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()


def test_kill_9_at_several_points_then_resume_gives_identical_weights(tmp_path):
    straight = driver(tmp_path / "a", tmp_path / "a.pt")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    # Checkpoints are written every 15 steps, at each validation (every 12) and epoch end (53 steps
    # each); each run counts the one it found. Kills: in epoch 1, late in epoch 2, in epoch 3
    # after the plateau schedule has cut the learning rate.
    for writes in (1, 9, 13):
        kill_after_checkpoints(tmp_path / "b", tmp_path / "b.pt", writes)
    resumed = driver(tmp_path / "b", tmp_path / "b.pt")
    assert resumed.wait(timeout=300) == 0
    log = resumed.stderr.read()
    assert "train: resuming from" in log, log
    a, b = torch.load(tmp_path / "a.pt"), torch.load(tmp_path / "b.pt")
    assert a["curve"] == b["curve"]
    rates = [rate for *_, rate in a["curve"]]
    assert rates[-1] < rates[0]  # the schedule's cuts were restored too
    for name, tensor in a["state"].items():
        assert torch.equal(tensor, b["state"][name]), name


def test_checkpoint_of_other_params_is_not_used(tmp_path):
    from seq2seq.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path, {"fingerprint": "old", "epoch": 1, "step": 3})
    checkpoint, why = load_checkpoint(tmp_path, "new")
    assert checkpoint is None and "other params, data or code: starting fresh" in why
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"truncated")
    checkpoint, why = load_checkpoint(tmp_path, "new")
    assert checkpoint is None and "unreadable" in why


def test_code_digest_covers_every_subpackage(tmp_path):
    """A change anywhere in the package (the model, a fast path) gives another checkpoint fingerprint."""
    import shutil

    from seq2seq.training.checkpoint import code_digest

    package = Path(__file__).resolve().parents[1] / "seq2seq"
    copy = tmp_path / "seq2seq"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert code_digest(copy) == code_digest(package)
    for module in ("model/attention.py", "fast/unrolled.py", "data/batching.py"):
        before = code_digest(copy)
        (copy / module).write_text((copy / module).read_text() + "\n# changed\n")
        assert code_digest(copy) != before, module
