"""train.precision and train.deterministic: what each means per device, auto's pick, and the
recurrences' dtype under bf16 (tests/test_gpu.py checks the CUDA side where a GPU is at hand)."""
from __future__ import annotations

import time

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seq2seq.core.errors import ParamError
from seq2seq.model.recurrence import in_dtype, recur, recurrent_layers
from seq2seq.params.config import TrainConfig
from seq2seq.training.precision import check_precision, fastest, numerics
from seq2seq.training.trainer import train_model
from tests.conftest import synthetic_pairs
from tests.helpers import TINY_MODEL, encode, tokenizers


@pytest.mark.parametrize("precision", ["tf32", "fp16"])
def test_gpu_only_precisions_are_refused_on_the_cpu_in_one_line(precision):
    with pytest.raises(ParamError) as info:
        check_precision(precision, torch.device("cpu"))
    message = str(info.value)
    assert "train.precision" in message and "for CUDA GPUs" in message and "use fp32, bf16 or auto" in message
    assert "\n" not in message
    for fine in ("fp32", "bf16", "auto"):
        check_precision(fine, torch.device("cpu"))


def test_numerics_holds_for_the_block_only():
    before = torch.are_deterministic_algorithms_enabled()
    with numerics("fp32", True, torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled() == before


def test_fastest_picks_the_faster_and_leaves_the_random_numbers_alone():
    pace = {"fp32": 0.004, "bf16": 0.012}
    model = torch.nn.Linear(2, 2)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    picked, per_step = fastest(["fp32", "bf16"], torch.device("cpu"), model,
                               lambda model, p: (torch.rand(100), time.sleep(pace[p])))
    assert picked == "fp32" and per_step["fp32"] < per_step["bf16"]
    assert torch.equal(torch.rand(3), expected)  # the measurement drew from a forked generator
    pace = {"fp32": 0.012, "bf16": 0.004}
    assert fastest(["fp32", "bf16"], torch.device("cpu"), torch.nn.Linear(2, 2),
                   lambda model, p: time.sleep(pace[p]))[0] == "bf16"


def test_auto_trains_as_the_precision_it_picked_would_and_says_which(tmp_path):
    pairs = synthetic_pairs(120)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    lines = []

    def train(precision: str, **extra):
        cfg = TrainConfig(epochs=1, batch_tokens=200, valid_bleu_sentences=0, threads=1, precision=precision,
                          **extra)
        return train_model(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                           log=lines.append)

    auto = train("auto")
    assert auto.precision in ("fp32", "bf16")
    assert any(line.startswith(f"train: precision auto: {auto.precision} on cpu (per step: ") for line in lines)
    named = train(auto.precision, deterministic=True)  # deterministic: the same on a CPU
    assert named.precision == auto.precision
    for (name, a), (_, b) in zip(auto.model.state_dict().items(), named.model.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("packed", [False, True])
def test_a_recurrence_in_bf16_computes_in_bf16_and_trains_its_float32_weights(cell, packed):
    """What bf16 autocast on a CUDA GPU runs (there PyTorch's own autocast would take fp16): the
    recurrence on bf16 copies of inputs, state and weights, its gradients reaching the float32 weights."""
    torch.manual_seed(0)
    rnn = recurrent_layers(cell, 6, 8, 2, 0.0, bidirectional=True)
    x = torch.randn(3, 5, 6)
    inputs = pack_padded_sequence(x, torch.tensor([5, 4, 2]), batch_first=True) if packed else x
    reference, _ = rnn(inputs)
    out, state = in_dtype(rnn, inputs, None, torch.bfloat16)
    data, ref = (out.data, reference.data) if packed else (out, reference)
    assert data.dtype == torch.bfloat16
    torch.testing.assert_close(data.float(), ref, atol=0.05, rtol=0.05)
    data.float().sum().backward()
    assert all(p.dtype == torch.float32 and p.grad is not None and p.grad.abs().sum() > 0 for p in rnn.parameters())
    # Off a CUDA GPU, recur is the plain call, autocast or not.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain, _ = rnn(x)
        assert torch.equal(recur(rnn, x)[0], plain)


def test_tf32_is_a_stated_choice_on_cuda_and_the_settings_come_back():
    """fp32 on a CUDA GPU is float32 (PyTorch lets cuDNN use TF32 by default); tf32 turns it on.
    Only flags are set, so this runs without a GPU."""
    cuda = torch.device("cuda")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with numerics("fp32", False, cuda):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    with numerics("tf32", False, cuda):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with numerics("bf16", False, cuda):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
