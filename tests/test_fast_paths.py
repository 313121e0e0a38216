"""The model's variants (seq2seq/fast/variants.py) declare the reference's parameters and compute what
it computes; build_model picks the CPU one on the CPU only."""
import pytest
import torch
from torch import nn

from seq2seq.core.token_ids import BOS_ID, EOS_ID, PAD_ID
from seq2seq.fast import build_model
from seq2seq.fast.dropout import Dropout
from seq2seq.fast.projected import ProjectedMemory
from seq2seq.fast.variants import CpuSeq2Seq, Int8Seq2Seq, ProjectedSeq2Seq, as_variant
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.params.config import ModelConfig

VARIANTS = [{"attention": "none"}, {"attention": "luong"}, {"attention": "bahdanau"},
            {"attention": "luong", "input_feeding": True}, {"attention": "bahdanau", "layers": 2}]
SRC = torch.tensor([[5, 6, 7, 8, EOS_ID], [8, 9, EOS_ID, PAD_ID, PAD_ID]])
LENGTHS = torch.tensor([5, 3])
ids = lambda v: "-".join(map(str, v.values()))  # noqa: E731


def config_for(cell: str, variant: dict) -> ModelConfig:
    return ModelConfig(cell=cell, embedding_size=12, hidden_size=16, bidirectional=True, dropout=0.3,
                       tie_embeddings=False, **variant)


def reference(cell: str, variant: dict) -> Seq2Seq:
    torch.manual_seed(5)
    return Seq2Seq(config_for(cell, variant), 20, 24).eval()


@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
@pytest.mark.parametrize("kind", [ProjectedSeq2Seq, CpuSeq2Seq, Int8Seq2Seq], ids=lambda k: k.__name__)
def test_a_variant_declares_the_references_parameters_and_draws_the_same_initial_weights(variant, kind):
    """Built from the same seed, a variant holds the reference's initial weights, under the same
    names: a bundle saved by one loads into the other (training's draws are not moved by the
    choice of variant)."""
    plain = reference("lstm", variant)
    torch.manual_seed(5)
    built = kind(config_for("lstm", variant), 20, 24)
    fused = {name for name in built.state_dict() if "feed_hidden_gates" in name}  # Int8: derived, not declared
    assert set(built.state_dict()) - fused == set(plain.state_dict())
    for name, value in plain.state_dict().items():
        assert torch.equal(built.state_dict()[name], value), name


@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
def test_the_cpu_variant_is_built_with_its_parts(variant):
    model = CpuSeq2Seq(config_for("lstm", variant), 20, 24)
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert all(m.p == 0.3 for m in model.modules() if isinstance(m, Dropout))
    plain = reference("lstm", variant)
    assert all(type(m) is not Dropout for m in plain.modules())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
@pytest.mark.parametrize("kind", [ProjectedSeq2Seq, CpuSeq2Seq, Int8Seq2Seq], ids=lambda k: k.__name__)
def test_a_variant_decodes_as_the_reference(cell, variant, kind):
    """Step by step, as search runs it, in float64: the same log-probabilities (up to float
    rounding) and the same greedy tokens as the reference, which forms the context vectors."""
    plain = reference(cell, variant).double()
    fast = as_variant(plain, kind)
    assert type(fast) is kind and not fast.training
    with torch.no_grad():
        outputs = []
        for model in (plain, fast):
            memory, state = model.encode(SRC, LENGTHS)
            assert isinstance(memory, ProjectedMemory) == (model is fast)
            tokens, logits = torch.full((2, 1), BOS_ID), []
            for _ in range(6):
                features, state, _ = model.decoder(tokens, state, memory)
                logits.append(model.generator(features[:, -1]).log_softmax(-1))
                tokens = logits[-1].argmax(-1, keepdim=True)
            outputs.append(torch.stack(logits))
    torch.testing.assert_close(outputs[1], outputs[0])
    assert torch.equal(outputs[1].argmax(-1), outputs[0].argmax(-1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
def test_the_cpu_variant_trains_as_the_reference(cell, variant):
    """Teacher forcing in float64, every length, padding included: the same features at the real
    positions and the same gradient for every parameter (dropout off: its masks are drawn
    differently)."""
    config = ModelConfig(cell=cell, embedding_size=12, hidden_size=16, bidirectional=True, dropout=0.0,
                         tie_embeddings=False, **variant)
    torch.manual_seed(5)
    plain = Seq2Seq(config, 20, 24).double().train()
    fast = as_variant(plain, CpuSeq2Seq)
    prev = torch.tensor([[BOS_ID, 9, 10, 11], [BOS_ID, 7, PAD_ID, PAD_ID]])
    lengths = [4, 2]
    results = []
    for model in (plain, fast):
        features, positions = model.teacher_forced(SRC, LENGTHS, prev, lengths)
        order = positions.argsort()
        features, positions = features[order], positions[order]
        torch.manual_seed(1)
        (model.generator(features).log_softmax(-1) * torch.randn(features.size(0), 24, dtype=torch.float64)
         ).sum().backward()
        results.append((features.detach(), positions, {n: p.grad for n, p in model.named_parameters()
                                                       if p.grad is not None}))
    (f0, p0, g0), (f1, p1, g1) = results
    assert torch.equal(p0, p1)
    torch.testing.assert_close(f1, f0)
    assert g0.keys() == g1.keys()
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], msg=lambda m: f"{name}: {m}")


def test_build_model_picks_the_cpu_variant_on_the_cpu_only():
    """The CPU paths were measured on CPUs; elsewhere (and for exported graphs) the projected
    variant, whose arithmetic is the reference's regrouped (cuDNN, fused dropout)."""
    config = ModelConfig(attention="bahdanau", input_feeding=True)
    assert type(build_model(config, 30, 30, "cpu")) is CpuSeq2Seq
    assert type(build_model(config, 30, 30, "cpu", int8=True)) is Int8Seq2Seq
    assert type(build_model(config, 30, 30, "meta")) is ProjectedSeq2Seq
    assert type(build_model(config, 30, 30, None)) is ProjectedSeq2Seq
    with pytest.raises(ValueError, match="CPU only"):
        build_model(config, 30, 30, "meta", int8=True)
