import itertools

import pytest
import torch

from seq2seq.batching import source_tensor
from seq2seq.search import batched_beam_search, beam_search, greedy_search, length_penalty, max_lengths
from seq2seq.subwords import BOS_ID, EOS_ID
from tests.test_model import tiny

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
    beam = batched_beam_search(model, src, lengths, limit, beam=1, alpha=0.0)  # the beam code, not the shortcut
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


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_finds_the_exhaustive_best(alpha):
    torch.manual_seed(1)
    from seq2seq.config import ModelConfig
    from seq2seq.model import Seq2Seq

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
    result = beam_search(model, src, lengths, torch.tensor([limit]), beam=200, alpha=alpha, nbest=3)[0]
    assert result[0].tokens == best[1]
    assert result[0].score == pytest.approx(best[0], abs=1e-4)
    assert [h.score for h in result] == sorted((h.score for h in result), reverse=True)


def test_max_length_is_respected():
    model = tiny()
    src, lengths = source_tensor(SOURCES)
    limit = torch.tensor([2, 2, 2])
    for hyps in beam_search(model, src, lengths, limit, beam=3, alpha=1.0, nbest=3):
        assert all(len(h.tokens) <= 2 for h in hyps)
