import pytest

from seq2seq.core.errors import DataError
from seq2seq.reporting.scoring import score_corpus


def test_perfect_and_partial_scores():
    refs = ["El gato rojo ve el perro.", "Hola."]
    perfect = score_corpus(refs, refs)
    assert perfect["bleu"] == pytest.approx(100.0)
    assert perfect["chrf"] == pytest.approx(100.0)
    assert perfect["ter"] == pytest.approx(0.0)
    assert perfect["signatures"]["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    worse = score_corpus(["El perro.", "Adiós."], refs)
    assert worse["bleu"] < 50 and worse["ter"] > 0


def test_length_mismatch():
    with pytest.raises(DataError, match="2 hypotheses but 1 references"):
        score_corpus(["a", "b"], ["a"])


def test_multi_reference_scores_each_source_once_against_all_its_references():
    from seq2seq.reporting.scoring import multi_reference_scores

    sources = ["Hi there.", "Hi there.", "Go away now."]
    hyps = ["Hola a todos ustedes.", "Hola a todos ustedes.", "Vete de aquí ahora."]
    refs = ["Buenas tardes a todos.", "Hola a todos ustedes.", "Vete de aquí ahora."]
    multi = multi_reference_scores(sources, hyps, refs)
    assert multi["sentences"] == 2 and multi["max_references"] == 2
    assert multi["bleu"] == 100.0  # each hypothesis matches one of its references
    assert score_corpus(hyps, refs)["bleu"] < 100.0
    assert multi_reference_scores(["a", "b"], ["x", "y"], ["x", "y"]) is None
