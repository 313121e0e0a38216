import itertools

import pytest
import torch

from seq2seq.data.batching import source_tensor
from seq2seq.data.subwords import BOS_ID, EOS_ID
from seq2seq.decoding.torch_backend import TorchBackend, max_lengths, sampler, search_batch
from seq2seq.search import algorithms
from seq2seq.search.rules import length_penalty
from seq2seq.search.settings import SearchSettings
from tests.test_model import tiny


@torch.inference_mode()
def greedy_search(model, src, lengths, limit):
    xp = TorchBackend(model, src.device)
    limits = limit if isinstance(limit, list) else limit.tolist()
    return algorithms.token_by_token(xp, src, lengths, limits, xp.most_likely, 0.0, False)


@torch.inference_mode()
def beam_search(model, src, lengths, limit, beam, alpha, nbest=1, attention=False, early_stop=True):
    """The beam code (also for beam 1, which a search settings' beam 1 sends to greedy search)."""
    xp = TorchBackend(model, src.device)
    return algorithms.beam_search(xp, src, lengths, limit.tolist(), beam, alpha, nbest, attention, early_stop)


def sample_search(model, src, lengths, count, alpha, temperature, top_k, top_p, generator):
    """``count`` samples per sentence, the longest ceil(1.5 * source tokens) + 3 (as ``max_lengths(..., 1.5, 3)``)."""
    settings = SearchSettings(sampling=True, nbest=count, length_penalty=alpha, temperature=temperature, top_k=top_k,
                              top_p=top_p, max_length_ratio=1.5, max_length_extra=3)
    return search_batch(model, src, lengths, settings, generator)


SOURCES = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]


def run(model, sources, beam, alpha=1.0, nbest=1, ratio=1.5, extra=3):
    src, lengths = source_tensor(sources)
    limit = max_lengths(lengths - 1, ratio, extra)
    return beam_search(model, src, lengths, limit, beam, alpha, nbest)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_beam_one_is_greedy(cell, attention):
    model = tiny(cell, attention=attention, input_feeding=attention == "bahdanau")
    src, lengths = source_tensor(SOURCES)
    limit = max_lengths(lengths - 1, 1.5, 3)
    greedy = greedy_search(model, src, lengths, limit)
    beam = beam_search(model, src, lengths, limit, beam=1, alpha=0.0)  # the beam code, not the shortcut
    assert [h.tokens for h in greedy] == [r[0].tokens for r in beam]
    assert [h.log_prob for h in greedy] == pytest.approx([r[0].log_prob for r in beam], abs=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("attention, feeding", [("luong", False), ("bahdanau", True)])
def test_batch_equals_one_by_one(beam, attention, feeding):
    model = tiny("lstm", attention=attention, input_feeding=feeding)
    together = run(model, SOURCES, beam)
    for source, result in zip(SOURCES, together):
        alone = run(model, [source], beam)[0]
        assert alone[0].tokens == result[0].tokens
        assert alone[0].score == pytest.approx(result[0].score, abs=1e-4)


def sequence_log_prob(model, source, tokens, with_eos):
    src, lengths = source_tensor([source])
    prev = torch.tensor([[BOS_ID] + tokens])
    gold = tokens + ([EOS_ID] if with_eos else [])
    with torch.no_grad():
        logp = torch.log_softmax(model.generator(model(src, lengths, prev)), -1)[0]
    return sum(float(logp[i, t]) for i, t in enumerate(gold))


@pytest.mark.parametrize("alpha, early_stop", [(0.0, True), (0.0, False), (1.0, False)])
def test_wide_beam_finds_the_exhaustive_best(alpha, early_stop):
    """Exact for every alpha when the beam runs until ``beam`` hypotheses end; with early
    stopping (the best candidate ends) exact for raw log-probability, alpha = 0."""
    torch.manual_seed(1)
    from seq2seq.model.seq2seq import Seq2Seq
    from seq2seq.params.config import ModelConfig

    model = Seq2Seq(ModelConfig(embedding_size=8, hidden_size=8, dropout=0.0), 8, 6).eval()
    source = [4, 5, 6]
    limit = 3  # at most 3 output tokens
    best = None
    for length in range(0, limit + 1):
        for tokens in itertools.product([t for t in range(6) if t != EOS_ID], repeat=length):
            tokens = list(tokens)
            ended = length < limit
            if not ended and length != limit:
                continue
            lp = sequence_log_prob(model, source, tokens, with_eos=ended)
            score = lp / length_penalty(length + (1 if ended else 0), alpha)
            if best is None or score > best[0]:
                best = (score, tokens)
    src, lengths = source_tensor([source])
    result = beam_search(model, src, lengths, torch.tensor([limit]), beam=200, alpha=alpha, nbest=3,
                         early_stop=early_stop)[0]
    assert result[0].tokens == best[1]
    assert result[0].score == pytest.approx(best[0], abs=1e-4)
    assert [h.score for h in result] == sorted((h.score for h in result), reverse=True)


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_early_stop_keeps_the_best_of_the_full_beam_at_alpha_zero(attention):
    """Early stopping ends a sentence when its best candidate ends: with alpha = 0 no live beam
    can beat it, so the best hypothesis is the full beam's; with n-best it waits for n ended."""
    model = tiny("gru", attention=attention)
    src, lengths = source_tensor(SOURCES)
    limit = max_lengths(lengths - 1, 1.5, 3)
    early = beam_search(model, src, lengths, limit, beam=4, alpha=0.0, nbest=2, early_stop=True)
    full = beam_search(model, src, lengths, limit, beam=4, alpha=0.0, nbest=2, early_stop=False)
    for e, f in zip(early, full):
        assert e[0].tokens == f[0].tokens and e[0].score == pytest.approx(f[0].score, abs=1e-5)
        assert len(e) == 2 and e[0].score >= e[1].score


def test_max_length_is_respected():
    model = tiny()
    src, lengths = source_tensor(SOURCES)
    limit = torch.tensor([2, 2, 2])
    for hyps in beam_search(model, src, lengths, limit, beam=3, alpha=1.0, nbest=3):
        assert all(len(h.tokens) <= 2 for h in hyps)


def teacher_forced(model, source, tokens, ended):
    """Log-probability and attention weights of one given output, by teacher forcing."""
    src, lengths = source_tensor([source])
    memory, state = model.encode(src, lengths)
    prev = torch.tensor([[BOS_ID] + tokens[: len(tokens) if ended else len(tokens) - 1]])
    with torch.no_grad():
        features, _, weights = model.decoder(prev, state, memory)
        logp = torch.log_softmax(model.generator(features), -1)[0]
    gold = tokens + ([EOS_ID] if ended else [])
    return sum(float(logp[i, t]) for i, t in enumerate(gold)), weights[0]


@pytest.mark.parametrize("beam, nbest", [(1, 1), (4, 3)])
@pytest.mark.parametrize("attention, feeding", [("luong", False), ("bahdanau", True)])
def test_reported_scores_and_attention_are_those_of_the_hypothesis(beam, nbest, attention, feeding):
    model = tiny("lstm", attention=attention, input_feeding=feeding)
    alpha = 0.7
    src, lengths = source_tensor(SOURCES)  # padded: the shorter sources must not see padding
    results = beam_search(model, src, lengths, max_lengths(lengths - 1, 1.5, 3), beam, alpha, nbest,
                          attention=True)
    for source, hyps in zip(SOURCES, results):
        assert len(hyps) == nbest
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            log_prob, weights = teacher_forced(model, source, h.tokens, h.ended)
            steps = len(h.tokens) + (1 if h.ended else 0)
            assert h.log_prob == pytest.approx(log_prob, abs=1e-4)
            assert h.score == pytest.approx(log_prob / length_penalty(steps, alpha), abs=1e-4)
            assert h.attention.shape == (steps, len(source) + 1)
            assert torch.allclose(h.attention.sum(-1), torch.ones(steps), atol=1e-5)
            assert torch.allclose(h.attention, weights[:steps], atol=1e-5)


def test_no_attention_model_returns_no_weights():
    model = tiny(attention="none")
    src, lengths = source_tensor(SOURCES)
    for hyps in beam_search(model, src, lengths, max_lengths(lengths - 1, 1.5, 3), 3, 1.0, attention=True):
        assert hyps[0].attention is None


def test_sampler_keeps_to_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(4000, 1)
    generator = torch.Generator().manual_seed(0)
    drawn = sampler(1.0, 2, 1.0, generator)(logits)
    assert set(drawn.tolist()) == {0, 1}
    assert (drawn == 0).float().mean() == pytest.approx(0.5 / 0.8, abs=0.03)
    drawn = sampler(1.0, 0, 0.8, generator)(logits)  # 0.5 + 0.3 reaches 0.8: the nucleus is {0, 1}
    assert set(drawn.tolist()) == {0, 1}
    drawn = sampler(1.0, 0, 0.81, generator)(logits)
    assert set(drawn.tolist()) == {0, 1, 2}
    drawn = sampler(1.0, 0, 1.0, generator)(logits)
    assert (drawn == 3).float().mean() == pytest.approx(0.05, abs=0.015)
    cold = sampler(0.05, 0, 1.0, generator)(logits)
    assert set(cold.tolist()) == {0}


def test_sampling_is_seeded_ranked_and_degenerates_to_greedy():
    model = tiny()
    src, lengths = source_tensor(SOURCES)
    limit = max_lengths(lengths - 1, 1.5, 3)

    def draw(seed, **kw):
        settings = dict(temperature=1.0, top_k=0, top_p=1.0) | kw
        return sample_search(model, src, lengths, 5, 1.0, generator=torch.Generator().manual_seed(seed),
                             **settings)

    a, b, c = draw(1), draw(1), draw(2)
    assert [[h.tokens for h in hs] for hs in a] == [[h.tokens for h in hs] for hs in b]
    assert [[h.tokens for h in hs] for hs in a] != [[h.tokens for h in hs] for hs in c]
    for source, hyps in zip(SOURCES, a):
        assert len(hyps) == 5 and [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            log_prob, _ = teacher_forced(model, source, h.tokens, h.ended)
            assert h.log_prob == pytest.approx(log_prob, abs=1e-4)  # under the model, not the tempered draw
    greedy = greedy_search(model, src, lengths, limit)
    for hyps in (draw(3, top_k=1), draw(4, top_p=1e-6)):
        assert [h.tokens for hs in hyps for h in hs] == [g.tokens for g in greedy for _ in range(5)]


@pytest.mark.parametrize("vocab", [300, 4000, 8000, 8037])
def test_row_top_equals_topk(vocab):
    """The chunked top-k (used over the vocabulary at every step) gives topk's values and tokens,
    also when the vocabulary is not a multiple of the chunk and the best token is in the tail."""
    from seq2seq.decoding.torch_backend import row_top

    torch.manual_seed(vocab)
    logits = torch.randn(50, vocab)
    logits[0, -1] = 100.0  # the best token in the last columns
    for k in (1, 6):
        values, tokens = row_top(logits, k)
        expected = logits.topk(k, dim=-1)
        assert torch.equal(values, expected.values) and torch.equal(tokens, expected.indices)


@pytest.mark.parametrize("beam", [1, 4])
def test_a_search_on_a_device_waits_for_one_value_per_step(beam, monkeypatch):
    """The search run on the meta device, where any read of a tensor's value fails: each step reads
    one (which sentences go on, through ``on_host``), so it has no loop over sentences or beams.
    The reads are answered here: every sentence goes on, then every other one, then none."""
    import seq2seq.decoding.torch_backend as backend_module
    from seq2seq.search.finished import Finished

    model = tiny("lstm", attention="bahdanau", input_feeding=True).to("meta")
    sources = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14], [15, 16]]
    src, lengths = source_tensor(sources)
    reads = []

    def answer(value):
        reads.append(value.shape)
        going = torch.ones(value.shape, dtype=torch.bool)
        if len(reads) == 2:
            going[::2] = False
        return going if len(reads) < 4 else ~going

    monkeypatch.setattr(backend_module, "on_host", answer)
    monkeypatch.setattr(Finished, "hypotheses", lambda self, lengths, nbest: [])
    if beam == 1:
        monkeypatch.setattr(torch.Tensor, "tolist", lambda self: [])  # the results, after the loop
        greedy_search(model, src.to("meta"), lengths, [10] * 5)
    else:
        beam_search(model, src.to("meta"), lengths, torch.full((5,), 10), beam, 1.0, 2)
    assert reads == [(5,), (5,), (2,), (2,)]  # one per step; two sentences left after the second


@pytest.mark.parametrize("beam", [1, 3])
def test_an_ensemble_searches_with_the_mean_of_its_models_log_probabilities(beam):
    """The one search over an ensemble backend: two copies of a model search as the model does,
    and two different models as their mean log-probabilities, step by step, say."""
    from seq2seq.search.ensemble import Ensemble

    def EnsembleBackend(models, device, weights=None):
        return Ensemble([TorchBackend(m, device) for m in models], weights)

    model = tiny("lstm", attention="bahdanau", input_feeding=True)
    settings = SearchSettings(beam=beam, nbest=1, length_penalty=0.0, max_length_ratio=1.5, max_length_extra=3)
    with torch.inference_mode():
        alone = algorithms.translate_ids(TorchBackend(model, "cpu"), SOURCES, settings)
        twice = algorithms.translate_ids(EnsembleBackend([model, model], "cpu"), SOURCES, settings)
        assert [h[0].tokens for h in twice] == [h[0].tokens for h in alone]
        assert [h[0].log_prob for h in twice] == pytest.approx([h[0].log_prob for h in alone], abs=1e-4)
        other = tiny("gru", attention="luong")
        pair = algorithms.translate_ids(EnsembleBackend([model, other], "cpu"), SOURCES, settings)
        for source, hyps in zip(SOURCES, pair):  # each token's score: the mean of the two models'
            tokens = hyps[0].tokens + ([EOS_ID] if hyps[0].ended else [])
            total = 0.0
            for step, token in enumerate(tokens):
                prefix = torch.tensor([[BOS_ID] + tokens[:step]])
                src, lengths = source_tensor([source])
                mean = sum(torch.log_softmax(m.generator(m(src, lengths, prefix)[:, -1]), -1) for m in (model, other)) / 2
                total += float(mean[0, token])  # the mean as it is: not renormalised
            assert hyps[0].log_prob == pytest.approx(total, abs=1e-4)
        weighted = algorithms.translate_ids(EnsembleBackend([model, other], "cpu", [3.0, 1.0]), SOURCES[:1], settings)
        tokens = weighted[0][0].tokens + ([EOS_ID] if weighted[0][0].ended else [])
        src, lengths = source_tensor([SOURCES[0]])
        prefix = torch.tensor([[BOS_ID] + tokens[:-1]])
        by_model = [torch.log_softmax(m.generator(m(src, lengths, prefix)), -1)[0] for m in (model, other)]
        expected = sum(float(0.75 * by_model[0][t, tok] + 0.25 * by_model[1][t, tok]) for t, tok in enumerate(tokens))
        assert weighted[0][0].log_prob == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="one weight > 0 per model"):
        EnsembleBackend([model, other], "cpu", [1.0])
