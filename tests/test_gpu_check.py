"""bench/gpu_check.sh --dry-run: every step the GPU check takes, run on the CPU over a tiny project,
so the script is known to work before a GPU is at hand."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from seq2seq.data.clean import write_split
from seq2seq.data.encoded import save_encoded
from tests.conftest import synthetic_pairs
from tests.helpers import encode, tokenizers

pytestmark = pytest.mark.e2e  # runs the real pipeline or its processes: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parent.parent


def test_the_dry_run_takes_every_step_on_the_cpu(tmp_path):
    pairs = synthetic_pairs(300)
    src_tok, tgt_tok = tokenizers(pairs)
    tokens = tmp_path / "data/tokens"
    tokens.mkdir(parents=True)
    (tokens / "src.spm.model").write_bytes(src_tok.proto)
    (tokens / "tgt.spm.model").write_bytes(tgt_tok.proto)
    split = encode(pairs, src_tok, tgt_tok)
    save_encoded(tokens / "train", split.src, split.tgt)
    save_encoded(tokens / "valid", split.src[:50], split.tgt[:50])
    (tmp_path / "data/clean").mkdir()
    write_split(pd.DataFrame({"source": [a for a, _ in pairs[:50]], "target": [b for _, b in pairs[:50]],
                              "attribution": ""}), tmp_path / "data/clean/valid.tsv")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    report = tmp_path / "report.md"
    done = subprocess.run(["bash", str(ROOT / "bench/gpu_check.sh"), "--dry-run", "--project", str(tmp_path),
                           "--out", str(report)], capture_output=True, text=True, env={
                               "PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text()
    for section in ("## Versions", "## Training", "## Resume", "## Decoding", "## Export", "## DDP", "## No GPU"):
        assert section in text
    assert text.count("| default | ") == 2 and text.count("| joey | ") == 2  # fp32 and bf16 each
    assert "weights identical to the run straight through" in text
    assert "Identical translations on both: 100.0%" in text
    assert "DistributedDataParallel over a one-rank gloo group" in text
    assert "exit status 1, 1 line: `error: train: params.yaml: train.device: got 'cuda'; CUDA is not available" in text


def test_without_a_gpu_the_real_check_says_how_to_try_it(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "bench/gpu_check.sh")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 1
    assert done.stderr.strip() == ("gpu_check: torch sees no CUDA GPU here; run it on a GPU machine (with a CUDA "
                                   "build of torch), or with --dry-run to try every step on the CPU")
