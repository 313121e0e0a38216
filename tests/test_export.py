"""ONNX export and the torch-free runtime: every model variant exports, and the exported model
searches as the PyTorch model does (same greedy output, same beam hypotheses, scores within 1e-4)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from seq2seq.decoding.translator import Translator
from seq2seq.export.onnx_export import export_onnx
from seq2seq.params.config import ModelConfig
from seq2seq.runtime.folder import EXPORT_FILE, STEP_FILE
from seq2seq.runtime.numpy_backend import row_top
from seq2seq.runtime.translator import OnnxTranslator
from tests.conftest import synthetic_pairs
from tests.helpers import cli, one_line_error, train_tiny_bundle

SMALL = dict(embedding_size=32, hidden_size=32)
VARIANTS = {  # every choice the trainer offers appears at least once; dropout > 0 must vanish at export
    "gru-luong-bi": ModelConfig(cell="gru", **SMALL, dropout=0.2),
    "lstm-bahdanau-feed-2layers-untied": ModelConfig(cell="lstm", **SMALL, layers=2, bidirectional=False,
                                                     attention="bahdanau", input_feeding=True,
                                                     tie_embeddings=False, dropout=0.3),
    # N(0, 1) embeddings: with the scaled start this tiny model ends its short training emitting runs of
    # near-equal pieces, whose beam ties PyTorch and ONNX Runtime may break differently
    "gru-none-uni": ModelConfig(cell="gru", **SMALL, bidirectional=False, attention="none", dropout=0.1,
                                embedding_init="normal"),
    "lstm-luong-dot-feed": ModelConfig(cell="lstm", **SMALL, attention="luong", luong_score="dot",
                                       input_feeding=True, dropout=0.1),
    "gru-bahdanau-2layers-encoder48": ModelConfig(cell="gru", **SMALL, layers=2, encoder_hidden_size=48,
                                                  attention="bahdanau", dropout=0.1),
    "lstm-none-2layers-bi": ModelConfig(cell="lstm", **SMALL, layers=2, attention="none", dropout=0.1),
}
SOURCES = [a for a, _ in synthetic_pairs(400, seed=5)[:40]] + [
    "", "The cat", "red red red red red red dog sees the the the big car book horse."]
SEARCHES = [dict(beam=5, nbest=3), dict(beam=4, nbest=2, length_penalty=0.0, early_stop=False),
            dict(beam=3, nbest=1, max_length_ratio=0.5, max_length_extra=1)]  # the last cuts most off


@pytest.fixture(scope="module", params=list(VARIANTS))
def exported(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    bundle = train_tiny_bundle(folder / "model", epochs=2, model=VARIANTS[request.param])
    export_onnx(bundle, folder / "onnx")
    return Translator.load(bundle, device="cpu"), OnnxTranslator.load(folder / "onnx", threads=1)


def test_greedy_output_equals_pytorch(exported):
    pytorch, onnx = exported
    expected = pytorch.translate_details(SOURCES, beam=1)
    got = onnx.translate_details(SOURCES, beam=1)
    assert [h[0].text for h in got] == [h[0].text for h in expected]
    assert [h[0].target_pieces for h in got] == [h[0].target_pieces for h in expected]
    assert np.allclose([h[0].log_prob for h in got], [h[0].log_prob for h in expected], atol=1e-4)


@pytest.mark.parametrize("search", SEARCHES, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_beam_search_returns_the_same_hypotheses_and_scores(exported, search):
    pytorch, onnx = exported
    expected = pytorch.translate_details(SOURCES, **search)
    got = onnx.translate_details(SOURCES, **search)
    for mine, theirs in zip(got, expected):
        assert [(h.text, h.target_pieces) for h in mine] == [(h.text, h.target_pieces) for h in theirs]
        for a, b in zip(mine, theirs):
            assert abs(a.score - b.score) < 1e-4 and abs(a.log_prob - b.log_prob) < 1e-4


def test_attention_weights_match(exported):
    pytorch, onnx = exported
    for kwargs in (dict(beam=1), dict(beam=3)):
        expected = pytorch.translate_details(SOURCES[:8], attention=True, **kwargs)
        got = onnx.translate_details(SOURCES[:8], attention=True, **kwargs)
        for mine, theirs in zip(got, expected):
            if theirs[0].attention is None:
                assert mine[0].attention is None
            else:
                assert np.allclose(mine[0].attention, theirs[0].attention.numpy(), atol=1e-4)


def test_sampling_with_top_k_one_is_greedy_and_a_seed_repeats(exported):
    _, onnx = exported
    greedy = onnx.translate(SOURCES, beam=1)
    assert onnx.translate(SOURCES, sampling=True, top_k=1) == greedy
    first = onnx.translate_nbest(SOURCES[:10], sampling=True, nbest=3, temperature=1.5, seed=7)
    assert onnx.translate_nbest(SOURCES[:10], sampling=True, nbest=3, temperature=1.5, seed=7) == first
    assert all(len(n) == 3 and n[0][1] >= n[-1][1] for n in first)


def test_row_top_finds_the_largest_values_of_a_large_vocabulary():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((9, 8003)).astype(np.float32)
    for k in (1, 2, 6, 11):
        top = row_top(values, k)
        expected = np.argsort(-values, axis=-1)[:, :k]
        assert [set(r) for r in top.tolist()] == [set(r) for r in expected.tolist()]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return train_tiny_bundle(tmp_path_factory.mktemp("export-cli") / "model", epochs=2)


def test_export_then_translate_without_torch(bundle, tmp_path):
    """`seq2seq export`, then `seq2seq translate --model DIR` in a process where torch, mlflow, pandas,
    sacrebleu, matplotlib and dvc cannot be imported: what is left is numpy, sentencepiece, pyyaml and
    onnxruntime, as in the README's torch-free install. Same output as the PyTorch model."""
    out = tmp_path / "exported"
    proc = cli("export", "--model", str(bundle), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"export: {out}" in proc.stdout and "fp32" in proc.stdout
    text = "The red cat sees the dog.\n\nThe old horse has the book.\n"
    expected = Translator.load(bundle, device="cpu").translate_nbest(text.split("\n")[:-1], beam=3, nbest=2)
    proc = cli("translate", "--model", str(out), "--beam", "3", "--nbest", "2", "--scores", input_text=text,
               blocked=("torch", "mlflow", "pandas", "sacrebleu", "matplotlib", "dvc"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "LOADED"  # nothing of torch, mlflow or pandas was imported
    blocks = proc.stdout.split("\n\n")[:-1]
    got = [[tuple(line.rsplit("\t", 1)) for line in block.split("\n")] for block in blocks]
    assert [[t for t, _ in n] for n in got] == [[t for t, _ in n] for n in expected]
    assert all(abs(float(s) - e) < 1e-3 for n, m in zip(got, expected) for (_, s), (_, e) in zip(n, m))


def test_int8_export_is_smaller_and_translates(bundle, tmp_path):
    fp32 = tmp_path / "fp32"
    int8 = tmp_path / "int8"
    export_onnx(bundle, fp32)
    export_onnx(bundle, int8, quantize="int8")
    info = json.loads((int8 / EXPORT_FILE).read_text())
    assert info["precision"] == "int8"
    import onnx

    for name in ("encoder.onnx", STEP_FILE):  # ONNX Runtime's integer kernels replace float products
        ops = {node.op_type for node in onnx.load(str(int8 / name)).graph.node}
        assert "DynamicQuantizeLinear" in ops and ops & {"MatMulInteger", "DynamicQuantizeLSTM"}, (name, ops)
    full = OnnxTranslator.load(fp32).translate(SOURCES)
    small = OnnxTranslator.load(int8).translate(SOURCES)
    assert sum(a == b for a, b in zip(full, small)) >= 0.6 * len(SOURCES)  # int8 rounds, so not all


def test_an_export_replaces_an_earlier_one_and_records_its_source(bundle, tmp_path):
    out = tmp_path / "exported"
    export_onnx(bundle, out, quantize="int8")
    info = export_onnx(bundle, out)
    assert json.loads((out / EXPORT_FILE).read_text()) == info and info["precision"] == "fp32"
    import hashlib

    assert info["exported_from"]["weights_sha256"] == hashlib.sha256((bundle / "weights.pt").read_bytes()).hexdigest()


def test_bad_exports_and_folders_are_one_clear_line(bundle, tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    one_line_error(cli("export", "--model", str(bundle), "--out", str(other)), "--out", "not an exported model")
    assert (other / "keep.txt").read_text() == "mine"
    good = tmp_path / "exported"
    export_onnx(bundle, good)
    one_line_error(cli("export", "--model", str(good), "--out", str(tmp_path / "again")), "already an exported")
    one_line_error(cli("translate", "--model", str(good), "--quantize", "int8", input_text="x\n"),
                   "--quantize", "seq2seq export --quantize int8")
    one_line_error(cli("translate", "--model", str(good), "--device", "cuda", input_text="x\n"), "--device", "CPU")
    step = good / STEP_FILE
    step.write_bytes(step.read_bytes()[:-10])
    one_line_error(cli("translate", "--model", str(good), input_text="x\n"), STEP_FILE, "checksum", "export it again")
    (good / EXPORT_FILE).write_text("[1, 2]")
    one_line_error(cli("translate", "--model", str(good), input_text="x\n"), EXPORT_FILE, "not an object")


def test_a_missing_onnx_or_onnxruntime_says_what_to_install(bundle, tmp_path, monkeypatch):
    import importlib.util

    from seq2seq.core.errors import Seq2SeqError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(Seq2SeqError, match=r'pip install "seq2seq\[onnx\]"'):
        export_onnx(bundle, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    monkeypatch.undo()
    export_onnx(bundle, tmp_path / "exported")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    with pytest.raises(Seq2SeqError, match=r'pip install "seq2seq\[onnx\]"'):
        OnnxTranslator.load(tmp_path / "exported")
