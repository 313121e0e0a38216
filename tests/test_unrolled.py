"""The unrolled teacher-forced decoder (seq2seq/fast/unrolled.py) against the plain model's step loop it
replaces: same features, weights and final state, and the same gradient for every parameter and input."""

import pytest
import torch

from seq2seq.data.subwords import BOS_ID, EOS_ID, PAD_ID
from seq2seq.fast.unrolled import UnrolledSteps
from seq2seq.fast.variants import CpuSeq2Seq, as_variant
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.params.config import ModelConfig

UNROLLED_VARIANTS = [
    {"attention": "bahdanau", "input_feeding": True},
    {"attention": "bahdanau", "input_feeding": False},
    {"attention": "luong", "input_feeding": True},
    {"attention": "luong", "input_feeding": True, "luong_score": "dot"},
]


def model_for(cell: str, variant: dict, encoder_hidden: int = 0) -> Seq2Seq:
    """The reference model (its decoder's own step loop, forming the context vectors);
    ``cpu(model)`` is the CPU variant with its weights, which unrolls the steps."""
    torch.manual_seed(3)
    config = ModelConfig(cell=cell, embedding_size=12, hidden_size=16, encoder_hidden_size=encoder_hidden,
                         bidirectional=True, dropout=0.0, tie_embeddings=False, **variant)
    return Seq2Seq(config, 20, 24).double().train()


def cpu(model: Seq2Seq) -> Seq2Seq:
    return as_variant(model, CpuSeq2Seq)


def unrolls(model: Seq2Seq, prev: torch.Tensor, memory) -> bool:
    return UnrolledSteps().applies(model.decoder, prev, memory)


SRC = torch.tensor([[5, 6, 7, 8, EOS_ID], [8, 9, EOS_ID, PAD_ID, PAD_ID], [10, EOS_ID, PAD_ID, PAD_ID, PAD_ID]])
LENGTHS = torch.tensor([5, 3, 2])
PREV = torch.tensor([[BOS_ID, 9, 10, 11, 12, 13], [BOS_ID, 11, 4, 5, PAD_ID, PAD_ID], [BOS_ID, 7, PAD_ID] + [PAD_ID] * 3])


def run(model: Seq2Seq, one_step_at_a_time: bool):
    """Features, weights, final state, and every gradient of a loss that touches all outputs."""
    model.zero_grad(set_to_none=True)
    memory, state = model.encode(SRC, LENGTHS)
    if one_step_at_a_time:  # T = 1 calls: the step loop
        features, weights = [], []
        for t in range(PREV.size(1)):
            out, state, w = model.decoder(PREV[:, t:t + 1], state, memory)
            features.append(out)
            weights.append(w)
        features, weights = torch.cat(features, 1), torch.cat(weights, 1)
    else:
        assert unrolls(model, PREV, memory)
        features, state, weights = model.decoder(PREV, state, memory)
    torch.manual_seed(1)
    final = state.rnn if isinstance(state.rnn, tuple) else (state.rnn,)
    loss = (features * torch.randn_like(features)).sum() + sum((s * torch.randn_like(s)).sum() for s in final)
    loss = loss + (model.generator(features).log_softmax(-1)[..., 3]).sum()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return features.detach(), weights.detach(), [s.detach() for s in final], grads


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", UNROLLED_VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
@pytest.mark.parametrize("encoder_hidden", [0, 24])
def test_unrolled_matches_step_loop(cell, variant, encoder_hidden):
    if encoder_hidden and variant.get("luong_score") == "dot":
        pytest.skip("dot scores need equal encoder and decoder sizes")
    model = model_for(cell, variant, encoder_hidden)
    f_loop, w_loop, s_loop, g_loop = run(model, one_step_at_a_time=True)
    f_un, w_un, s_un, g_un = run(cpu(model), one_step_at_a_time=False)
    torch.testing.assert_close(f_un, f_loop)
    torch.testing.assert_close(w_un, w_loop)
    for a, b in zip(s_un, s_loop):
        torch.testing.assert_close(a, b)
    assert g_un.keys() == g_loop.keys()
    for name in g_loop:
        torch.testing.assert_close(g_un[name], g_loop[name], msg=lambda m: f"{name}: {m}")
    # every decoder and attention parameter has a gradient that is not all zero
    assert all(g_un[name].abs().sum() > 0 for name in g_un if name.startswith("decoder.") and "embed" not in name)


def test_step_loop_is_used_where_unrolling_does_not_apply():
    model = cpu(model_for("lstm", {"attention": "bahdanau", "input_feeding": True}))
    memory, _ = model.encode(SRC, LENGTHS)
    assert not unrolls(model, PREV[:, :1], memory)  # one step (search)
    beams = memory.select(torch.tensor([0, 1, 2]))
    assert not unrolls(model, PREV.repeat(2, 1), beams)  # two rows per memory entry
    assert not unrolls(model, PREV, model_for("lstm", {"attention": "bahdanau", "input_feeding": True}).encode(
        SRC, LENGTHS)[0])  # the reference's memory (no projected shares)
    two_layers = CpuSeq2Seq(ModelConfig(cell="lstm", attention="bahdanau", input_feeding=True, layers=2,
                                     embedding_size=12, hidden_size=16, tie_embeddings=False), 20, 24)
    memory, _ = two_layers.encode(SRC, LENGTHS)
    assert not unrolls(two_layers, PREV, memory)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not unrolls(model, PREV, model.encode(SRC, LENGTHS)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_without_grad_gives_the_same_features(cell):
    """Validation runs the unrolled forward under no_grad, where it keeps nothing for a backward."""
    model = cpu(model_for(cell, {"attention": "bahdanau", "input_feeding": True}))
    memory, state = model.encode(SRC, LENGTHS)
    with_grad, _, _ = model.decoder(PREV, state, memory)
    with torch.no_grad():
        memory, state = model.encode(SRC, LENGTHS)
        without, final, weights = model.decoder(PREV, state, memory)
    torch.testing.assert_close(without, with_grad.detach())
    assert not without.requires_grad and weights.shape == (3, PREV.size(1), SRC.size(1))


def loop_with_lengths(model: Seq2Seq, lengths: list[int], src, src_lengths, prev):
    """The step loop, with each row's features kept up to its length and its state taken after
    its own last step: what the unrolled decoder computes when it is given the lengths."""
    memory, state = model.encode(src, src_lengths)
    features, hs, cs = [], [], []
    for t in range(prev.size(1)):
        out, state, _ = model.decoder(prev[:, t:t + 1], state, memory)
        features.append(out)
        h, c = state.rnn if isinstance(state.rnn, tuple) else (state.rnn, None)
        hs.append(h[0])
        cs.append(None if c is None else c[0])
    features = torch.cat(features, 1)
    rows = torch.arange(len(lengths))
    ends = torch.tensor(lengths) - 1
    real = (torch.arange(prev.size(1)).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).unsqueeze(2)
    final = [torch.stack(hs)[ends, rows]] + ([torch.stack(cs)[ends, rows]] if cs[0] is not None else [])
    return features * real, final


def loss_and_grads(model: Seq2Seq, features, final):
    torch.manual_seed(1)
    loss = (features * torch.randn_like(features)).sum() + sum((s * torch.randn_like(s)).sum() for s in final)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", UNROLLED_VARIANTS[:3], ids=lambda v: "-".join(map(str, v.values())))
@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1]], ids=["longest-first", "shuffled"])
def test_lengths_skip_padding_steps_exactly(cell, variant, order):
    """Given the target lengths, rows stop at their length: the features there, each row's final
    state after its own last step, and every gradient are those of the full step loop; the
    features past a row's length are zero. Rows in any order (the decoder sorts them)."""
    model = model_for(cell, variant)
    src, src_lengths, prev = SRC[order], LENGTHS[order], PREV[order]
    lengths = [int(n) for n in (prev != PAD_ID).sum(1)]
    expected, expected_final = loop_with_lengths(model, lengths, src, src_lengths, prev)
    expected_grads = loss_and_grads(model, expected, expected_final)
    model = cpu(model)
    memory, state = model.encode(src, src_lengths)
    features, state, weights = model.decoder(prev, state, memory, lengths)
    final = list(state.rnn) if isinstance(state.rnn, tuple) else [state.rnn]
    final = [s[0] for s in final]
    torch.testing.assert_close(features, expected.detach())
    for a, b in zip(final, expected_final):
        torch.testing.assert_close(a, b.detach())
    past = torch.arange(prev.size(1)).unsqueeze(0) >= torch.tensor(lengths).unsqueeze(1)
    assert bool((weights[past] == 0).all()) and bool((features[past] == 0).all())
    grads = loss_and_grads(model, features, final)
    assert grads.keys() == expected_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], msg=lambda m: f"{name}: {m}")


def test_lengths_are_checked():
    from seq2seq.fast.unrolled import active_rows
    assert active_rows([3, 3, 1], 3, 3) == [3, 2, 2]
    assert active_rows(None, 2, 3) == [2, 2, 2]
    for bad in ([1, 3, 3], [4, 1, 1], [0, 0, 0], [3, 3]):
        with pytest.raises(ValueError, match="non-increasing"):
            active_rows(bad, 3, 3)


def test_step_layout_blocks():
    """Rows [3, 3, 1] steps: step 0 runs 3 rows, steps 1 and 2 run 2. State blocks: 3 initial
    states, then 3, 2, 2 after each step; a step reads its rows of the block before it."""
    from seq2seq.fast.unrolled import StepLayout
    layout = StepLayout.of([3, 3, 1])
    assert layout.active == (3, 2, 2) and layout.starts == (0, 3, 6, 8, 10)
    assert (layout.input_rows, layout.output_rows) == (8, 7)
    rows, steps = layout.input_positions()
    assert rows.tolist() == [0, 1, 2, 0, 1, 2, 0, 1] and steps.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    rows, steps = layout.output_positions()
    assert rows.tolist() == [0, 1, 2, 0, 1, 0, 1] and steps.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert layout.previous_states().tolist() == [0, 1, 2, 3, 4, 6, 7]
    assert layout.final_states().tolist() == [8, 9, 5]


@pytest.mark.parametrize("variant", [{"attention": "bahdanau", "input_feeding": True},
                                     {"attention": "luong", "input_feeding": False}], ids=["unrolled", "one-call"])
def test_teacher_forced_gives_the_real_positions_features(variant):
    """The loss's entry point: features of the real target positions only, with their positions
    in [B, T]; values and gradients are the full forward's at those positions."""
    model = cpu(model_for("lstm", variant))
    order = [2, 0, 1]
    src, src_lengths, prev = SRC[order], LENGTHS[order], PREV[order]
    lengths = [int(n) for n in (prev != PAD_ID).sum(1)]
    memory, state = model.encode(src, src_lengths)
    full, _, _ = model.decoder(prev, state, memory, lengths)
    expected = full.reshape(-1, full.size(-1))
    expected_grads = loss_and_grads(model, expected[(prev != PAD_ID).reshape(-1)], [])
    features, positions = model.teacher_forced(src, src_lengths, prev, lengths)
    assert sorted(positions.tolist()) == (prev != PAD_ID).reshape(-1).nonzero().squeeze(1).tolist()
    torch.testing.assert_close(features, expected[positions].detach())
    # the same loss, its terms in the decoder's order
    index = positions.argsort().argsort()
    torch.manual_seed(1)
    weights = torch.randn(features.shape, dtype=features.dtype)[index]
    (features * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == expected_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], msg=lambda m: f"{name}: {m}")
