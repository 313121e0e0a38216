"""The CPU fast paths plug into the plain model and compute what it computes."""
import copy

import pytest
import torch
from torch import nn

from seq2seq.data.subwords import BOS_ID, EOS_ID, PAD_ID
from seq2seq.fast import plug_in
from seq2seq.fast.additive_scores import additive_scores_by_sigmoid
from seq2seq.fast.dropout import Dropout
from seq2seq.fast.unrolled import UnrolledSteps
from seq2seq.model.attention import additive_scores
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.params.config import ModelConfig

VARIANTS = [{"attention": "none"}, {"attention": "luong"}, {"attention": "bahdanau"},
            {"attention": "luong", "input_feeding": True}, {"attention": "bahdanau", "layers": 2}]
SRC = torch.tensor([[5, 6, 7, 8, EOS_ID], [8, 9, EOS_ID, PAD_ID, PAD_ID]])
LENGTHS = torch.tensor([5, 3])


def plain(cell: str, variant: dict) -> Seq2Seq:
    torch.manual_seed(5)
    config = ModelConfig(cell=cell, embedding_size=12, hidden_size=16, bidirectional=True, dropout=0.3,
                         tie_embeddings=False, **variant)
    return Seq2Seq(config, 20, 24).eval()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_plug_in_swaps_the_modules_and_keeps_the_weights(variant):
    model = plain("lstm", variant)
    names = set(model.state_dict())
    assert any(type(m) is nn.Dropout for m in model.modules()) and model.decoder.unrolled is None
    plug_in(model)
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert all(m.p == 0.3 for m in model.modules() if isinstance(m, Dropout))
    assert isinstance(model.decoder.unrolled, UnrolledSteps)
    if variant["attention"] == "bahdanau":
        assert model.decoder.attention.scores is additive_scores_by_sigmoid
    assert not any(m.training for m in model.modules())  # each swapped module keeps its mode
    assert set(model.state_dict()) == names  # the same bundle loads into either


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_plugged_model_decodes_as_the_plain_one(cell, variant):
    """Step by step, as search runs it: the same logits (up to float rounding) and the same greedy tokens."""
    reference = plain(cell, variant)
    fast = plug_in(copy.deepcopy(reference))
    with torch.no_grad():
        outputs = []
        for model in (reference, fast):
            memory, state = model.encode(SRC, LENGTHS)
            tokens, logits = torch.full((2, 1), BOS_ID), []
            for _ in range(6):
                features, state, _ = model.decoder(tokens, state, memory)
                logits.append(model.generator(features[:, -1]))
                tokens = logits[-1].argmax(-1, keepdim=True)
            outputs.append(torch.stack(logits))
    torch.testing.assert_close(outputs[1], outputs[0])
    assert torch.equal(outputs[1].argmax(-1), outputs[0].argmax(-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_additive_scores_by_sigmoid_match_tanh(dtype):
    torch.manual_seed(0)
    projected = torch.randn(3, 10, 8, dtype=dtype, requires_grad=True)
    keys = torch.randn(3, 7, 8, dtype=dtype, requires_grad=True)
    v = torch.randn(8, dtype=dtype, requires_grad=True)
    expected = additive_scores(projected, keys, v)
    got = additive_scores_by_sigmoid(projected, keys, v)
    torch.testing.assert_close(got, expected)
    weights = torch.randn_like(expected)
    want = torch.autograd.grad((expected * weights).sum(), (projected, keys, v))
    have = torch.autograd.grad((got * weights).sum(), (projected, keys, v))
    for a, b in zip(have, want):
        torch.testing.assert_close(a, b)
    with torch.no_grad():  # in place on its own buffer when nothing needs a gradient
        torch.testing.assert_close(additive_scores_by_sigmoid(projected, keys, v), expected.detach())


def test_the_cpu_fast_paths_are_plugged_in_on_the_cpu_only():
    """They were measured on CPUs; on a GPU the model stays the reference (cuDNN, fused dropout)."""
    from seq2seq.fast.dropout import Dropout

    model = plug_in(Seq2Seq(ModelConfig(attention="bahdanau", input_feeding=True), 30, 30), "meta")
    assert model.decoder.unrolled is None
    assert not any(isinstance(m, Dropout) for m in model.modules())
    model = plug_in(Seq2Seq(ModelConfig(attention="bahdanau", input_feeding=True), 30, 30), "cpu")
    assert model.decoder.unrolled is not None and any(isinstance(m, Dropout) for m in model.modules())
