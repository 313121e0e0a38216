import json
import subprocess
import sys

import pytest
import torch

from seq2seq.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle
from seq2seq.errors import ModelBundleError
from seq2seq.translator import Translator
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
    assert proc.stderr.strip().count("\n") == 0 and "not a model bundle" in proc.stderr
