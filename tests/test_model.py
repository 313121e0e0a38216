import pytest
import torch

from seq2seq.data.subwords import BOS_ID, EOS_ID, PAD_ID
from seq2seq.fast.variants import CpuSeq2Seq
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.params.config import ModelConfig

ATTENTION_VARIANTS = [
    {"attention": "none"},
    {"attention": "luong"},
    {"attention": "luong", "luong_score": "dot"},
    {"attention": "luong", "input_feeding": True},
    {"attention": "bahdanau"},
    {"attention": "bahdanau", "input_feeding": True},
]


def tiny(cell="gru", attention="luong", bidirectional=True, layers=1, **kw) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = ModelConfig(cell=cell, attention=attention, bidirectional=bidirectional, layers=layers,
                      embedding_size=16, hidden_size=16, dropout=0.0, **kw)
    return Seq2Seq(cfg, 20, 24).eval()


# Dot scores need equal encoder and decoder sizes (ModelConfig refuses the rest), so a
# separate encoder size is combined with every other attention variant only.
SHAPE_VARIANTS = [(variant, encoder_hidden) for variant in ATTENTION_VARIANTS for encoder_hidden in (0, 32)
                  if not (encoder_hidden and variant.get("luong_score") == "dot")]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("variant, encoder_hidden", SHAPE_VARIANTS,
                         ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict) else f"enc{v}")
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_shapes(cell, variant, encoder_hidden, bidirectional, layers):
    model = tiny(cell, bidirectional=bidirectional, layers=layers, encoder_hidden_size=encoder_hidden, **variant)
    src = torch.tensor([[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]])
    lengths = torch.tensor([4, 2])
    prev = torch.tensor([[BOS_ID, 9, 10], [BOS_ID, 11, PAD_ID]])
    features = model(src, lengths, prev)
    assert features.shape == (2, 3, 16)
    assert model.generator(features).shape == (2, 3, 24)
    memory, state = model.encode(src, lengths)
    h = state.rnn[0] if cell == "lstm" else state.rnn
    assert h.shape == (layers, 2, 16)
    if variant["attention"] == "none":
        assert memory.keys is None and memory.states is None
    else:
        assert memory.keys.shape[:2] == memory.states.shape[:2] == (2, 4)
    _, _, weights = model.decoder(prev, state, memory)
    if variant["attention"] == "none":
        assert weights is None
    else:
        assert weights.shape == (2, 3, 4)
        assert torch.all(weights[1, :, 2:] == 0)  # padding gets no attention
        assert torch.allclose(weights.sum(-1), torch.ones(2, 3))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("variant", ATTENTION_VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_teacher_forced_pass_equals_step_by_step(cell, variant):
    """The whole-target call (training) and one step at a time (search) compute the same thing."""
    model = tiny(cell, **variant)
    src = torch.tensor([[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]])
    lengths = torch.tensor([4, 2])
    prev = torch.tensor([[BOS_ID, 9, 10, 11], [BOS_ID, 12, 13, 14]])
    with torch.no_grad():
        whole = model(src, lengths, prev)
        memory, state = model.encode(src, lengths)
        steps = []
        for t in range(prev.size(1)):
            out, state, _ = model.decoder(prev[:, t:t + 1], state, memory)
            steps.append(out)
    assert torch.allclose(whole, torch.cat(steps, dim=1), atol=1e-5)


def test_input_feeding_needs_attention():
    from seq2seq.core.errors import ParamError

    with pytest.raises(ParamError, match="model.input_feeding"):
        ModelConfig(attention="none", input_feeding=True)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_padding_never_enters_the_encoder(cell):
    """Packed batches give the same states as each sentence alone, for the real positions."""
    model = tiny(cell)
    a = torch.tensor([[5, 6, 7, 8, EOS_ID]])
    b = torch.tensor([[9, 10, EOS_ID]])
    batch = torch.tensor([[5, 6, 7, 8, EOS_ID], [9, 10, EOS_ID, PAD_ID, PAD_ID]])
    with torch.no_grad():
        out_batch, final_batch = model.encoder(batch, torch.tensor([5, 3]))
        out_b, final_b = model.encoder(b, torch.tensor([3]))
        out_a, _ = model.encoder(a, torch.tensor([5]))
    assert torch.allclose(out_batch[1, :3], out_b[0], atol=1e-6)
    assert torch.allclose(out_batch[0], out_a[0], atol=1e-6)
    assert torch.all(out_batch[1, 3:] == 0)
    hb = final_batch[0] if cell == "lstm" else final_batch
    hs = final_b[0] if cell == "lstm" else final_b
    assert torch.allclose(hb[:, 1], hs[:, 0], atol=1e-6)


def test_tied_embeddings_share_weights():
    model = tiny(tie_embeddings=True)
    assert model.generator.weight is model.decoder.embed.weight


def test_embeddings_start_on_the_scale_of_their_size_unless_normal_is_asked_for():
    config = ModelConfig(embedding_size=256, hidden_size=256, tie_embeddings=True)
    torch.manual_seed(0)
    scaled = Seq2Seq(config, 3000, 3000)
    for table in (scaled.encoder.embed, scaled.decoder.embed):
        assert torch.equal(table.weight[PAD_ID], torch.zeros(256))
        assert float(table.weight[PAD_ID + 1:].std()) == pytest.approx(256 ** -0.5, rel=0.02)
    assert scaled.generator.weight is scaled.decoder.embed.weight
    torch.manual_seed(0)
    normal = Seq2Seq(ModelConfig(embedding_size=256, hidden_size=256, embedding_init="normal"), 3000, 3000)
    assert float(normal.decoder.embed.weight[PAD_ID + 1:].std()) == pytest.approx(1.0, rel=0.02)


def split_state(whole: dict[str, torch.Tensor], input_sizes: list[int]) -> dict[str, torch.Tensor]:
    """An nn.LSTM/nn.GRU's parameters as StepRecurrence's: layer 0's input weights split by
    columns into the shares of embedding, context (0: none) and fed-back vector (0: none)."""
    embedding, context, feed = whole["weight_ih_l0"].split(input_sizes, dim=1)
    state = {"input_gates.weight": embedding, "input_gates.bias": whole["bias_ih_l0"],
             "hidden_gates.weight": whole["weight_hh_l0"], "hidden_gates.bias": whole["bias_hh_l0"]}
    if input_sizes[1]:
        state["context_gates.weight"] = context
    if input_sizes[2]:
        state["feed_gates.weight"] = feed
    for key in [k for k in whole if not k.endswith("_l0")]:
        name, layer = key.rsplit("_l", 1)
        state[f"upper.{name}_l{int(layer) - 1}"] = whole[key]
    return state


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_step_recurrence_computes_what_the_whole_layer_computes_over_the_concatenated_input(cell, layers):
    """Layer 0's gates as shares (embedding, context, fed-back vector) are nn.LSTM/nn.GRU over
    [embedding; context; feed] (the same weights, split by columns)."""
    from seq2seq.model.recurrence import StepRecurrence, recurrent_layers

    torch.manual_seed(1)
    emb_size, ctx_size, feed_size, hidden, batch = 6, 10, 8, 8, 3
    whole = recurrent_layers(cell, emb_size + ctx_size + feed_size, hidden, layers, 0.0, False)
    split = StepRecurrence(cell, emb_size, ctx_size, feed_size, hidden, layers, 0.0)
    split.load_state_dict(split_state(whole.state_dict(), [emb_size, ctx_size, feed_size]))
    emb, ctx, feed = torch.randn(batch, emb_size), torch.randn(batch, ctx_size), torch.randn(batch, feed_size)
    h = torch.randn(layers, batch, hidden)
    state = (h, torch.randn(layers, batch, hidden)) if cell == "lstm" else h
    with torch.no_grad():
        expected, expected_state = whole(torch.cat([emb, ctx, feed], dim=-1).unsqueeze(1), state)
        output, new_state = split.step(split.input_gates(emb) + split.context_gates(ctx), feed, state)
    assert torch.allclose(output, expected[:, 0], atol=1e-6)
    for got, want in zip(*((s if cell == "lstm" else (s,)) for s in (new_state, expected_state))):
        assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_fused_feed_and_hidden_product_steps_like_the_two(attention):
    """The int8 variant's one product over [feed; h] (LSTM with input feeding), filled from the
    reference's two when the weights load, gives the same steps; a GRU keeps the two."""
    from seq2seq.fast.variants import Int8Seq2Seq, as_variant

    model = tiny("lstm", attention=attention, input_feeding=True)
    fused = as_variant(model, Int8Seq2Seq)
    assert fused.decoder.recurrence.feed_hidden_gates is not None
    src = torch.tensor([[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]])
    lengths = torch.tensor([4, 2])

    def steps(model):
        memory, state = model.encode(src, lengths)
        outs = []
        for token in ([BOS_ID, BOS_ID], [9, 11], [10, 4]):
            out, state, _ = model.decoder(torch.tensor(token).unsqueeze(1), state, memory)
            outs.append(out)
        return torch.cat(outs, 1)

    with torch.no_grad():
        torch.testing.assert_close(steps(fused), steps(model))
    gru = as_variant(tiny("gru", attention=attention, input_feeding=True), Int8Seq2Seq)
    assert gru.decoder.recurrence.feed_hidden_gates is None


def test_int8_quantization_fuses_a_copy_and_leaves_the_model_alone():
    from seq2seq.decoding.translator import quantize_int8

    model = tiny("lstm", attention="bahdanau", input_feeding=True)
    quantized = quantize_int8(model)
    assert not hasattr(model.decoder.recurrence, "feed_hidden_gates")
    assert quantized.decoder.recurrence.feed_hidden_gates is not None
    assert ".quantized." in type(quantized.decoder.recurrence.feed_hidden_gates).__module__


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_encoder_by_length_equals_packed(cell, bidirectional, layers):
    """A batch of a few source lengths runs one call per length (the CPU variant), or one packed
    call with the rows sorted on the host (a GPU): same outputs, state and gradients as PyTorch's packing."""
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, bidirectional=bidirectional, layers=layers, embedding_size=12, hidden_size=12,
                         dropout=0.0)
    encoder = CpuSeq2Seq(config, 20, 24).double().encoder
    src = torch.tensor([[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID], [9, 10, 11, EOS_ID],
                        [12, 13, EOS_ID, PAD_ID]])
    lengths = torch.tensor([4, 2, 4, 3])
    assert len(lengths.unique()) <= encoder.MAX_LENGTH_GROUPS

    def run(path):
        encoder.zero_grad(set_to_none=True)
        embedded = encoder.embed(src)
        outputs, final = path(embedded)
        states = final if isinstance(final, tuple) else (final,)
        torch.manual_seed(1)
        loss = (outputs * torch.randn_like(outputs)).sum() + sum((s * torch.randn_like(s)).sum() for s in states)
        loss.backward()
        return outputs.detach(), [s.detach() for s in states], [p.grad.clone() for p in encoder.parameters()]

    grouped = run(lambda e: encoder._by_length(e, lengths, lengths.unique().tolist()))
    packed = run(lambda e: encoder._packed(e, lengths))
    host_sorted = run(lambda e: encoder._packed_sorted_on_host(e, lengths))
    torch.testing.assert_close(grouped[0], packed[0])
    torch.testing.assert_close(encoder(src, lengths)[0], packed[0])  # forward takes the by-length path
    assert torch.all(grouped[0][1, 2:] == 0)  # padding stays zero
    for a, b, c in zip(grouped[1] + grouped[2], packed[1] + packed[2], host_sorted[1] + host_sorted[2]):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(c, b)
    torch.testing.assert_close(host_sorted[0], packed[0])
