import json
import math
import subprocess
import sys

import pytest
import torch

from seq2seq.bundle.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle
from seq2seq.core.errors import ModelBundleError
from seq2seq.decoding.translator import Translator
from tests.helpers import train_tiny_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return train_tiny_bundle(tmp_path_factory.mktemp("bundle") / "model")


def test_bundle_roundtrip_translates(bundle_dir):
    translator = Translator.load(bundle_dir, device="cpu")
    out = translator.translate(["The red cat sees the dog.", "", "The old horse has the book."], beam=3)
    assert len(out) == 3 and out[1] == ""
    assert all(isinstance(s, str) for s in out)
    assert out == Translator.load(bundle_dir, device="cpu").translate(
        ["The red cat sees the dog.", "", "The old horse has the book."], beam=3)
    nbest = translator.translate_nbest(["The red cat sees the dog."], beam=4, nbest=3)[0]
    assert len(nbest) == 3 and [s for _, s in nbest] == sorted((s for _, s in nbest), reverse=True)


def test_overlong_input_is_truncated_not_a_crash(bundle_dir, capsys):
    translator = Translator.load(bundle_dir, device="cpu")
    out = translator.translate(["the cat " * 400], beam=2)
    assert len(out) == 1
    assert "only the first 256" in capsys.readouterr().err


def _copy(bundle_dir, tmp_path):
    import shutil

    target = tmp_path / "b"
    shutil.copytree(bundle_dir, target)
    return target


def test_corrupt_weights_are_refused(bundle_dir, tmp_path):
    broken = _copy(bundle_dir, tmp_path)
    data = (broken / WEIGHTS_FILE).read_bytes()
    (broken / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelBundleError, match="checksum does not match"):
        load_bundle(broken)


def test_config_that_does_not_match_weights(bundle_dir, tmp_path):
    broken = _copy(bundle_dir, tmp_path)
    info = json.loads((broken / CONFIG_FILE).read_text())
    info["model"]["layers"] = 2
    (broken / CONFIG_FILE).write_text(json.dumps(info))
    with pytest.raises(ModelBundleError, match="weights do not match config.json"):
        load_bundle(broken)


def test_newer_format_is_refused(bundle_dir, tmp_path):
    broken = _copy(bundle_dir, tmp_path)
    info = json.loads((broken / CONFIG_FILE).read_text())
    info["format_version"] = 99
    (broken / CONFIG_FILE).write_text(json.dumps(info))
    with pytest.raises(ModelBundleError, match="format_version 99 is not supported"):
        load_bundle(broken)


def test_missing_bundle(tmp_path):
    with pytest.raises(ModelBundleError, match="not a model bundle"):
        load_bundle(tmp_path)


def test_weights_load_without_pickle(bundle_dir):
    state = torch.load(bundle_dir / WEIGHTS_FILE, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_translate_command_streams_lines(bundle_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.cli", "translate", "--model", str(bundle_dir), "--beam", "2", "--scores"],
        input="The red cat sees the dog.\n\nThe old horse has the book.\n", capture_output=True, text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")[:-1]
    assert len(lines) == 3
    assert lines[1].startswith("\t")  # empty in, empty out (with its score column)


def test_translate_command_bad_model_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seq2seq.cli", "translate", "--model", str(tmp_path)],
                          input="x\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "holds neither export.json" in proc.stderr


def test_details_give_pieces_scores_and_attention(bundle_dir):
    translator = Translator.load(bundle_dir, device="cpu")
    for settings in ({"beam": 1}, {"beam": 4, "nbest": 2}, {"sampling": True, "nbest": 3, "top_k": 5}):
        results = translator.translate_details(["The red cat sees the dog.", ""], attention=True, **settings)
        assert results[1][0].text == "" and results[1][0].attention is None
        hyps = results[0]
        assert len(hyps) == settings.get("nbest", 1)
        for t in hyps:
            assert t.source_pieces[-1] == "</s>" and "".join(t.source_pieces[:-1]).replace("▁", " ").strip() \
                == "The red cat sees the dog."
            assert t.attention.shape == (len(t.target_pieces), len(t.source_pieces))
            assert torch.allclose(t.attention.sum(-1), torch.ones(len(t.target_pieces)), atol=1e-5)
            # (a lone word-start piece at the end decodes to a trailing space: an untrained model emits those)
            assert t.text.rstrip() == "".join(p for p in t.target_pieces
                                              if p not in ("</s>", "<unk>")).replace("▁", " ").strip()
        assert [t.score for t in hyps] == sorted((t.score for t in hyps), reverse=True)
    assert translator.translate_details(["The red cat sees the dog."])[0][0].attention is None  # only when asked


def test_bad_search_settings_name_the_setting(bundle_dir):
    from seq2seq.core.errors import Seq2SeqError

    translator = Translator.load(bundle_dir, device="cpu")
    for bad, name in (({"beam": 2, "nbest": 3}, "nbest"), ({"sampling": True, "top_p": 0.0}, "top_p"),
                      ({"temperature": 0.0}, "temperature"), ({"beam": 0}, "beam")):
        with pytest.raises(Seq2SeqError, match=f"^{name}: "):
            translator.translate(["The red cat."], **bad)


def test_translate_command_samples_reproducibly_and_prints_nbest(bundle_dir):
    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "seq2seq.cli", "translate", "--model", str(bundle_dir), *args],
                              input="The red cat sees the dog.\nThe old horse has the book.\n", capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    first = run("--sample", "--nbest", "3", "--seed", "7", "--temperature", "1.5", "--scores")
    assert first == run("--sample", "--nbest", "3", "--seed", "7", "--temperature", "1.5", "--scores")
    blocks = first.rstrip("\n").split("\n\n")
    assert len(blocks) == 2 and all(len(b.split("\n")) == 3 for b in blocks)
    scores = [float(line.split("\t")[1]) for line in blocks[0].split("\n")]
    assert scores == sorted(scores, reverse=True)
    proc = subprocess.run([sys.executable, "-m", "seq2seq.cli", "translate", "--model", str(bundle_dir), "--beam",
                           "2", "--nbest", "3"], input="x\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "nbest" in proc.stderr


def test_tokenizer_that_does_not_match_the_model_is_refused(bundle_dir, tmp_path):
    from seq2seq.data.subwords import train_sentencepiece
    from seq2seq.params.config import TokenizeConfig
    from tests.conftest import synthetic_pairs

    broken = _copy(bundle_dir, tmp_path)
    other = train_sentencepiece([b for _, b in synthetic_pairs(200)], TokenizeConfig(vocab_size=40), "target")
    (broken / "tgt.spm.model").write_bytes(other)
    with pytest.raises(ModelBundleError, match="checksum does not match"):
        load_bundle(broken)
    info = json.loads((broken / CONFIG_FILE).read_text())
    del info["sha256"]  # a hand-assembled bundle without checksums is still checked
    (broken / CONFIG_FILE).write_text(json.dumps(info))
    with pytest.raises(ModelBundleError, match="tokenizer vocabularies .* do not match the model"):
        load_bundle(broken)


def test_int8_quantized_model_translates_close_to_the_float_one(bundle_dir):
    from seq2seq.core.errors import Seq2SeqError

    sentences = ["The red cat sees the dog.", "The old horse has the book.", ""]
    plain = Translator.load(bundle_dir, device="cpu").translate_nbest(sentences, beam=3)
    quantized = Translator.load(bundle_dir, device="cpu", quantize="int8")
    assert any(".quantized." in type(m).__module__ for m in quantized.bundle.model.modules())
    fast = quantized.translate_nbest(sentences, beam=3)
    assert fast[2] == [("", 0.0)] and all(isinstance(t, str) for t, _ in fast[0] + fast[1])
    assert all(math.isfinite(score) for hyps in fast for _, score in hyps)
    assert sum(p[0][0] == f[0][0] for p, f in zip(plain[:2], fast[:2])) >= 1  # the real sentences: mostly the same
    with pytest.raises(Seq2SeqError, match="quantize"):
        Translator.load(bundle_dir, device="cpu", quantize="int4")


def test_int8_with_device_auto_decodes_on_the_cpu_where_a_gpu_is_visible(bundle_dir, monkeypatch):
    """int8 runs on the CPU only: with device auto (params' default) it must not pick the GPU and
    then refuse (decode.quantize int8 passed params validation and failed on GPU machines)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    translator = Translator.load(bundle_dir, device="auto", quantize="int8")
    assert translator.device == torch.device("cpu")
    assert any(".quantized." in type(m).__module__ for m in translator.bundle.model.modules())


@pytest.mark.parametrize("change, message", [
    (lambda info: [info], "holds a JSON list, not an object"),
    (lambda info: "text", "holds a JSON str, not an object"),
    (lambda info: {**info, "model": [1, 2]}, "model is [1, 2], not an object"),
    (lambda info: {**info, "src_vocab_size": "30"}, 'src_vocab_size is "30", not an integer'),
    (lambda info: {**info, "sha256": {"weights.pt": 7}}, "sha256.weights.pt is not a string"),
    (lambda info: {**info, "mlflow": {"run_id": 5}}, "mlflow.run_id is not a string"),
    (lambda info: {k: v for k, v in info.items() if k != "model"}, "model is missing"),
    (lambda info: {**info, "model": {**info["model"], "hidden_size": "big"}}, "hidden_size"),
], ids=["list", "string", "model-list", "vocab-string", "sha-int", "run-id-int", "no-model", "model-field"])
def test_config_json_of_the_wrong_shape_is_one_clear_line(bundle_dir, tmp_path, change, message):
    """Valid JSON of the wrong shape: a one-line error naming the file and the field, never a traceback."""
    from seq2seq.bundle.files import load_bundle_info

    broken = _copy(bundle_dir, tmp_path)
    info = json.loads((broken / CONFIG_FILE).read_text())
    (broken / CONFIG_FILE).write_text(json.dumps(change(info)))
    for load in (load_bundle, load_bundle_info):
        if load is load_bundle_info and message == "hidden_size":
            continue  # the model's fields are checked where the model is built
        with pytest.raises(ModelBundleError) as err:
            load(broken)
        text = str(err.value)
        assert message in text and str(broken / CONFIG_FILE) in text and "\n" not in text, text
    assert "dvc checkout data/model" in text or "hidden_size" in message


def test_an_ensemble_of_a_model_with_itself_translates_as_the_model(bundle_dir):
    """`seq2seq translate --model A --model A` (greedy and beam): the same translations and scores as
    `--model A` alone; weights must be one per model."""
    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "seq2seq.cli", "translate", *args, "--scores"],
                              input="The red cat sees the dog.\nThe old horse has the book.\n", capture_output=True,
                              text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        return [line.split("\t") for line in proc.stdout.splitlines()]

    for beam in ("1", "3"):
        alone = run("--model", str(bundle_dir), "--beam", beam)
        pair = run("--model", str(bundle_dir), "--model", str(bundle_dir), "--beam", beam, "--weights", "1", "3")
        assert [text for text, _ in pair] == [text for text, _ in alone]
        assert [float(s) for _, s in pair] == pytest.approx([float(s) for _, s in alone], abs=1e-3)
    bad = subprocess.run([sys.executable, "-m", "seq2seq.cli", "translate", "--model", str(bundle_dir), "--model",
                          str(bundle_dir), "--weights", "1"], input="x\n", capture_output=True, text=True, timeout=180)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "--weights" in bad.stderr
