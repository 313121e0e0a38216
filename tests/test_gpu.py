"""On a CUDA GPU (marker ``gpu``; skipped elsewhere, run by `make test` where torch sees one): training,
resume with weight averaging, decoding and one-rank DDP with nccl run there and agree with the CPU."""
from __future__ import annotations

import pytest
import torch

from seq2seq.params.config import TrainConfig
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


def test_bf16_recurrences_on_the_gpu_run_in_bf16_not_fp16():
    from seq2seq.model.recurrence import recur, recurrent_layers

    rnn = recurrent_layers("lstm", 8, 8, 1, 0.0, bidirectional=True).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, (h, c) = recur(rnn, torch.randn(2, 3, 8, device="cuda"))
    assert out.dtype == h.dtype == torch.bfloat16
    out.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in rnn.parameters())


@pytest.mark.parametrize("precision", ["fp16", "bf16", "tf32", "auto"])
def test_every_gpu_precision_trains_and_learns(precision):
    result, _, _ = tiny_run(torch.device("cuda"), validate_every=6, precision=precision)
    losses = [r.valid_loss for r in result.history]
    assert losses[-1] < losses[0] and result.precision in ("fp16", "bf16", "tf32")


def test_a_training_step_makes_no_synchronisation_the_debug_mode_sees():
    """The designed wait (an event, for the loss) aside, nothing in a step makes the host wait."""
    from seq2seq.training.trainer import Trainer

    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=1, batch_tokens=300, valid_bleu_sentences=0, word_dropout=0.1)
    trainer = Trainer(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cuda"),
                      lambda record: None, lambda line: None, None, "fp", {})
    trainer.progress.precision = "fp32"
    order = trainer._order(1)
    trainer.train_step(trainer.host_batch(split, order[0]))  # first step: allocations, lazy inits
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for indices in order[1:4]:
            trainer.train_step(trainer.host_batch(split, indices))
    finally:
        torch.cuda.set_sync_debug_mode(0)
