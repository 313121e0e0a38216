"""A tiny copy of the project in a temporary git repository, for end-to-end tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import synthetic_pairs, write_tsv

ROOT = Path(__file__).resolve().parents[1]

TINY_PARAMS = {
    "data": {"source": "local", "path": "corpus/tiny.tsv"},
    "clean": {"valid_size": 30, "test_size": 30},
    "tokenize": {"vocab_size": 30},
    "model": {"cell": "gru", "embedding_size": 32, "hidden_size": 32, "dropout": 0.1, "tie_embeddings": True},
    "train": {"epochs": 2, "batch_tokens": 300, "warmup_steps": 5, "valid_bleu_sentences": 20, "log_every": 10},
    "decode": {"beam_width": 2, "batch_size": 16},
}


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def make_repo(repo: Path, env_extra: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """Copy the pipeline into ``repo`` with tiny params and a 400-pair corpus; git and dvc init."""
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "seq2seq", "corpus", "tools"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_tsv(repo / "corpus" / "tiny.tsv", synthetic_pairs(400))
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))  # every key DVC expects
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    write_params(repo, params)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SEQ2SEQ_CACHE"] = str(repo / ".cache")
    env.update(env_extra or {})
    run(["git", "init", "-q"], repo, env)
    run(["git", "config", "user.email", "test@example.com"], repo, env)
    run(["git", "config", "user.name", "test"], repo, env)
    run([sys.executable, "-m", "dvc", "init", "-q"], repo, env)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], repo, env)
    return repo, env


def read_params(repo: Path) -> dict:
    return yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))


def write_params(repo: Path, params: dict, declare_inputs: bool = True) -> None:
    """Write params.yaml; ``declare_inputs``: then declare its local files in dvc.yaml, as a user
    does after pointing params.yaml at other files (``python tools/stage_deps.py``)."""
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    if declare_inputs:
        declared = subprocess.run([sys.executable, "tools/stage_deps.py"], cwd=repo, capture_output=True, text=True)
        assert declared.returncode == 0, declared.stderr
