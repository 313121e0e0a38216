"""What researchers decode with beyond one model's search: ensembles (PyTorch and ONNX), scoring given
translations (forced decoding), and word alignments from attention."""
from __future__ import annotations

import numpy as np
import pytest

from seq2seq.decoding.load import load_translator
from seq2seq.export.onnx_export import export_onnx
from seq2seq.params.config import ModelConfig
from seq2seq.runtime.alignment import pharaoh, word_alignment, word_index
from tests.conftest import synthetic_pairs
from tests.helpers import cli, one_line_error, train_tiny_bundle

SOURCES = [a for a, _ in synthetic_pairs(300, seed=9)[:24]] + ["The cat", "red red red dog sees the the big car."]
ATTENDING = ModelConfig(cell="gru", embedding_size=32, hidden_size=32, attention="luong", dropout=0.1)
SEARCHES = {"greedy": dict(beam=1), "beam": dict(beam=4, nbest=2)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny attention models trained on one tokenize result (seeds 42 and 7), each also exported; 18
    epochs, so that most of their greedy translations end in </s>."""
    folder = tmp_path_factory.mktemp("decoding-tools")
    a = train_tiny_bundle(folder / "a", epochs=18, model=ATTENDING)
    b = train_tiny_bundle(folder / "b", epochs=18, model=ATTENDING, seed=7)
    export_onnx(a, folder / "a-onnx")
    export_onnx(b, folder / "b-onnx")
    return {"a": a, "b": b, "a-onnx": folder / "a-onnx", "b-onnx": folder / "b-onnx"}


def same_hypotheses(got, expected, tolerance=1e-4):
    for mine, theirs in zip(got, expected, strict=True):
        assert [h.text for h in mine] == [h.text for h in theirs]
        assert np.allclose([h.score for h in mine], [h.score for h in theirs], atol=tolerance)
        assert np.allclose([h.log_prob for h in mine], [h.log_prob for h in theirs], atol=tolerance)


@pytest.mark.parametrize("kind", ["pytorch", "onnx"])
@pytest.mark.parametrize("search", list(SEARCHES))
def test_an_ensemble_of_a_model_with_itself_is_the_model(models, kind, search):
    """Greedy and beam, PyTorch and ONNX: the ensemble (A, A) translates and scores as A, weighted or not."""
    one = models["a"] if kind == "pytorch" else models["a-onnx"]
    alone = load_translator(one, device="cpu", **SEARCHES[search]).translate_details(SOURCES)
    for weights in (None, [1.0, 3.0]):
        pair = load_translator([one, one], device="cpu", weights=weights, **SEARCHES[search])
        same_hypotheses(pair.translate_details(SOURCES), alone)


@pytest.mark.parametrize("kind", ["pytorch", "onnx"])
def test_an_ensemble_samples_as_the_model_with_itself(models, kind):
    one = models["a"] if kind == "pytorch" else models["a-onnx"]
    settings = dict(sampling=True, nbest=2, temperature=1.3, seed=3)
    alone = load_translator(one, device="cpu", **settings).translate_details(SOURCES[:10])
    pair = load_translator([one, one], device="cpu", **settings).translate_details(SOURCES[:10])
    same_hypotheses(pair, alone)


@pytest.mark.parametrize("search", list(SEARCHES))
def test_an_onnx_ensemble_of_two_models_searches_as_the_pytorch_ensemble(models, search):
    pytorch = load_translator([models["a"], models["b"]], device="cpu", weights=[2, 1], **SEARCHES[search])
    onnx = load_translator([models["a-onnx"], models["b-onnx"]], device="cpu", weights=[2, 1], **SEARCHES[search])
    same_hypotheses(onnx.translate_details(SOURCES), pytorch.translate_details(SOURCES))
    alone = load_translator(models["a"], device="cpu", **SEARCHES[search]).translate(SOURCES)
    assert pytorch.translate(SOURCES) != alone  # the second model has its say


@pytest.mark.parametrize("members", [["a"], ["a-onnx"], ["a", "b"], ["a-onnx", "b-onnx"]])
def test_scoring_a_models_own_greedy_output_gives_the_score_its_search_reported(models, members):
    """Forced decoding of the greedy translations (length penalty 1 and 0): each score and log-probability
    is the search's, wherever the translation's text encodes back into the pieces the search chose and
    the search ended it with </s>."""
    translator = load_translator([models[m] for m in members], device="cpu", beam=1)
    for alpha in (1.0, 0.0):
        found = [h[0] for h in translator.translate_details(SOURCES, length_penalty=alpha)]
        scored = translator.score(SOURCES, [h.text for h in found], length_penalty=alpha)
        checked = 0
        for hyp, given in zip(found, scored):
            if hyp.target_pieces and hyp.target_pieces[-1] == "</s>" and given.target_pieces == hyp.target_pieces:
                assert given.score == pytest.approx(hyp.score, abs=1e-5)
                assert given.log_prob == pytest.approx(hyp.log_prob, abs=1e-5)
                assert sum(given.token_log_probs) == pytest.approx(given.log_prob, abs=1e-5)
                checked += 1
        assert checked >= len(SOURCES) // 2


def test_scoring_ranks_beam_hypotheses_as_the_search_did(models):
    translator = load_translator(models["a"], device="cpu", beam=4, nbest=3, length_penalty=0.0)
    checked = 0
    for source, hyps in zip(SOURCES[:8], translator.translate_details(SOURCES[:8])):
        scored = translator.score([source] * len(hyps), [h.text for h in hyps])
        for hyp, given in zip(hyps, scored):
            if given.target_pieces == hyp.target_pieces:
                assert given.log_prob == pytest.approx(hyp.log_prob, abs=1e-5)
                checked += 1
    assert checked >= 8  # at least one hypothesis a sentence on average


def test_an_ensemble_scores_the_weighted_mean_of_its_models_log_probabilities(models):
    sources, given = SOURCES[:6], [b for _, b in synthetic_pairs(300, seed=9)[:6]]
    by_a = load_translator(models["a"], device="cpu").score(sources, given, length_penalty=0.0)
    by_b = load_translator(models["b"], device="cpu").score(sources, given, length_penalty=0.0)
    both = load_translator([models["a"], models["b"]], device="cpu", weights=[3, 1]).score(sources, given,
                                                                                         length_penalty=0.0)
    for x, y, z in zip(by_a, by_b, both):
        assert z.log_prob == pytest.approx(0.75 * x.log_prob + 0.25 * y.log_prob, abs=1e-4)
        assert z.token_log_probs == pytest.approx([0.75 * p + 0.25 * q for p, q in
                                                   zip(x.token_log_probs, y.token_log_probs)], abs=1e-5)


@pytest.mark.parametrize("kind", ["a", "a-onnx"])
def test_a_translation_longer_than_a_search_would_write_is_scored_whole(models, kind):
    translator = load_translator(models[kind], device="cpu")
    long = " ".join(["the red dog sees the big car ."] * 60)
    [scored] = translator.score(["The cat"], [long], length_penalty=0.0)
    assert len(scored.token_log_probs) == len(translator.tgt_tokenizer.encode([long])[0]) + 1 > 300
    assert scored.log_prob == pytest.approx(sum(scored.token_log_probs), rel=1e-5)


@pytest.mark.parametrize("kind", ["a", "a-onnx"])
def test_alignments_give_one_source_word_in_range_per_target_word(models, kind):
    translator = load_translator(models[kind], device="cpu", beam=3)
    for source, hyps in zip(SOURCES, translator.translate_details(SOURCES, attention=True)):
        best = hyps[0]
        pairs = best.alignment()
        target_words, source_words = best.text.split(), source.split()
        assert [j for _, j in pairs] == list(range(len(target_words)))
        assert all(0 <= i < len(source_words) for i, _ in pairs)


def test_word_alignment_by_hand():
    """Words from pieces (``▁`` starts one), a target word's rows averaged, a source word's columns
    summed, </s> taking no word."""
    attention = np.array([[.1, .1, .7, .1],   # ▁x   -> c
                          [.5, .3, .1, .1],   # ▁y  \\  mean [.35, .2, .35, .1]: a+b .55 > c .35
                          [.2, .1, .6, .1],   # z   /
                          [0., 0., 0., 1.]])  # </s>
    pairs = word_alignment(["▁a", "b", "▁c", "</s>"], ["▁x", "▁y", "z", "</s>"], attention)
    assert pairs == [(1, 0), (0, 1)] and pharaoh(pairs) == "1-0 0-1"
    assert word_index(["▁Hel", "lo", "▁", "¿", "▁world", "</s>"]) == [0, 0, 1, 1, 2]
    assert word_index(["▁a", "▁", "</s>"]) == [0, 0]


def test_the_command_line_ensembles_scores_rescores_nbest_lists_and_aligns(models, tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("The red cat sees the dog.\n\nThe old horse has the book.\n", encoding="utf-8")
    a, b = str(models["a"]), str(models["b"])
    nbest = cli("translate", "--model", a, "--beam", "3", "--nbest", "2", "--scores", "-i", str(source))
    assert nbest.returncode == 0, nbest.stderr
    (tmp_path / "nbest.txt").write_text(nbest.stdout, encoding="utf-8")
    own = cli("score", "--model", a, "--source", str(source), "--nbest", "-i", str(tmp_path / "nbest.txt"))
    assert own.returncode == 0, own.stderr
    mine = [line.split("\t") for line in own.stdout.splitlines() if line]
    searched = [line.split("\t") for line in nbest.stdout.splitlines() if line]
    assert [m[0] for m in mine] == [s[0] for s in searched] and len(mine) == 5  # the empty line's one
    rescored = cli("score", "--model", b, "--source", str(source), "--nbest", "--per-token",
                   "-i", str(tmp_path / "nbest.txt"))
    assert rescored.returncode == 0, rescored.stderr
    assert rescored.stdout.count("\n\n") == 3 and all(len(line.split("\t")) == 4
                                                       for line in rescored.stdout.splitlines() if line)
    aligned = cli("translate", "--model", a, "--model", b, "--alignments", "-i", str(source))
    assert aligned.returncode == 0, aligned.stderr
    for line, text in zip(aligned.stdout.splitlines(), source.read_text().splitlines()):
        translation, alignment = line.split("\t")  # an empty line: an empty translation, no pairs
        assert len(alignment.split()) == len(translation.split())
        assert all(0 <= int(p.split("-")[0]) < len(text.split()) for p in alignment.split())
    one_line_error(cli("score", "--model", a, "--source", str(source), input_text="one line\n"),
                   "stdin", "1 lines", "--source", "3 lines")
    one_line_error(cli("translate", "--model", a, "--model", str(models["a-onnx"]), input_text="x\n"),
                   "--model", "all trained bundles or all exported folders")
    one_line_error(cli("translate", "--model", a, "--model", b, "--weights", "1", input_text="x\n"), "--weights")
    one_line_error(cli("score", "--model", a, "--source", str(tmp_path / "missing.txt"), input_text="x\n"),
                   "--source", "no such file")
