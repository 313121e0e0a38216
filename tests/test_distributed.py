"""Data-parallel training: train.nproc 2 runs the train stage as 2 torchrun ranks (gloo on CPU)."""
from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from tests.pipeline_repo import make_repo, read_params, run, write_params
from tests.test_mlflow_server import seq2seq_runs

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out

pytest.importorskip("torch.distributed", reason="needs torch.distributed")


def train_repo(folder, nproc: int):
    folder.mkdir()
    repo, env = make_repo(folder)
    params = read_params(repo)
    # No dropout, so the two ranks' shares add up to exactly the one-process batch.
    params["model"]["dropout"] = 0.0
    # On the CPU (gloo) on every machine: with auto, a GPU machine would take nccl and a GPU per rank.
    params["train"].update({"nproc": nproc, "epochs": 2, "validate_every": 6, "valid_bleu_sentences": 0,
                            "device": "cpu"})
    write_params(repo, params)
    result = run([sys.executable, "-m", "dvc", "repro", "train"], repo, env)
    return repo, env, result


def history(repo) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((repo / "metrics/train_history.csv").read_text())))


def test_two_ranks_train_like_one_process_with_the_same_global_batch(tmp_path):
    two, _, result = train_repo(tmp_path / "two", nproc=2)
    assert "train: data parallel over 2 processes (torchrun, DDP, gloo)" in result.stderr, result.stderr[-3000:]
    one, _, _ = train_repo(tmp_path / "one", nproc=1)
    # One bundle, one metrics file, one MLflow run, written by rank 0 only.
    assert (two / "data/model/weights.pt").is_file() and (two / "metrics/train.json").is_file()
    runs = seq2seq_runs(f"sqlite:///{two / 'mlflow.db'}")
    assert len(runs) == 1 and runs[0].data.params["train.nproc"] == "2"
    assert not (two / "data/checkpoints/train/last.pt").exists()
    # The same global batches split across ranks give the same curve as one process.
    two_rows, one_rows = history(two), history(one)
    assert [r["step"] for r in two_rows] == [r["step"] for r in one_rows]
    for a, b in zip(two_rows, one_rows):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=2e-3)
        assert float(a["valid_loss"]) == pytest.approx(float(b["valid_loss"]), rel=2e-3)
    summary = json.loads((two / "metrics/train.json").read_text())
    assert summary["steps"] == json.loads((one / "metrics/train.json").read_text())["steps"]


def test_killed_two_rank_training_resumes_to_the_same_curve(tmp_path):
    from seq2seq.training.checkpoint import CHECKPOINT_FILE
    from tests.test_interrupted_stages import kill_stage_during_run

    (tmp_path / "repo").mkdir()
    repo, env = make_repo(tmp_path / "repo")
    params = read_params(repo)
    params["model"]["dropout"] = 0.0
    params["train"].update({"nproc": 2, "epochs": 2, "validate_every": 6, "valid_bleu_sentences": 0,
                            "device": "cpu"})
    write_params(repo, params)
    run([sys.executable, "-m", "dvc", "repro", "tokenize"], repo, env)
    checkpoint = repo / "data/checkpoints/train" / CHECKPOINT_FILE
    assert kill_stage_during_run(repo, env, "train", checkpoint.exists) == "killed"
    resumed = run([sys.executable, "-m", "dvc", "repro", "train"], repo, env)
    assert "train: resuming from" in resumed.stderr, resumed.stderr[:3000]
    uninterrupted, _, _ = train_repo(tmp_path / "uninterrupted", nproc=2)
    for a, b in zip(history(repo), history(uninterrupted), strict=True):
        assert a["step"] == b["step"]
        assert float(a["valid_loss"]) == pytest.approx(float(b["valid_loss"]), rel=1e-6)


def test_a_cuda_rank_exchanges_its_totals_through_its_own_gpu(monkeypatch):
    """nccl all-reduces CUDA tensors only: a CUDA rank's group exchanges on cuda:LOCAL_RANK (the
    loop all-reduced a CPU tensor, which nccl refuses at the first step); a CPU rank on the CPU."""
    import torch
    import torch.distributed as dist

    from seq2seq.training import distributed

    calls = {}
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "die_with_parent", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.setdefault("set_device", d))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.setdefault("backend", backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    group = distributed.join(torch.device("cuda"))
    assert (group.rank, group.world, group.device) == (1, 2, torch.device("cuda", 1))
    assert calls == {"set_device": torch.device("cuda", 1), "backend": "nccl"}
    assert distributed.join(torch.device("cpu")).device == torch.device("cpu")

    class Sent(Exception):
        pass

    def all_reduce(tensor, op):
        calls["reduced_on"] = tensor.device
        raise Sent

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    with pytest.raises(Sent):  # (a meta tensor stands in for the GPU's: it carries the device, no data)
        distributed.ProcessGroup(1, 2, torch.device("meta")).summed(torch.tensor(2.5))
    assert calls["reduced_on"] == torch.device("meta")
