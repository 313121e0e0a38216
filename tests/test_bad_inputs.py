"""Bad input, file by file: every file a command or stage reads, missing, empty, truncated, of the
wrong kind or not UTF-8, gives one line that names the file (or the flag or key that gave it),
says what is wrong and what to do; exit status 1, no traceback, nothing written before lost.

The commands (``seq2seq translate``, ``seq2seq export``) run in fresh processes, as a user runs them;
the stages' readers (download, testset) are called as the stage scripts call them.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from seq2seq.core.errors import Seq2SeqError
from seq2seq.data.download import fetch_corpus
from seq2seq.data.testsets import prepare_test_set
from seq2seq.export.onnx_export import export_onnx
from seq2seq.params import config
from seq2seq.params.config import DataConfig, ParallelText, load_params
from seq2seq.runtime.folder import ENCODER_FILE, EXPORT_FILE, STEP_FILE
from tests.conftest import synthetic_pairs, write_tsv
from tests.helpers import cli, one_line_error, train_tiny_bundle

SENTENCES = "The red cat sees the dog.\nThe old horse has the book.\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A trained bundle and its export (never changed: each test copies what it breaks)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    bundle = train_tiny_bundle(root / "model", epochs=1)
    export_onnx(bundle, root / "exported")
    return bundle, root / "exported"


def refusal(command: str, model: Path, tmp_path: Path) -> str:
    """What loading ``model`` for ``command`` raises, in this process: what the command prints after
    ``error: COMMAND: `` (the CLI tests above show that every such error is printed as one line)."""
    from seq2seq.decoding.translator import Translator

    with pytest.raises(Seq2SeqError) as caught:
        if command == "translate":
            Translator.load(model, device="cpu")
        else:
            export_onnx(model, tmp_path / "out")
    assert "\n" not in str(caught.value)
    return str(caught.value)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def rehash(folder: Path, name: str) -> None:
    """Write ``name``'s new checksum into the folder's record, as a careless hand edit would: only
    the file's content can then tell that it is broken."""
    record = folder / (EXPORT_FILE if (folder / EXPORT_FILE).exists() else "config.json")
    info = json.loads(record.read_text())
    info["sha256"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    record.write_text(json.dumps(info))


# --------------------------------------------------------------------------- seq2seq translate: its input
def test_an_input_file_that_is_not_utf8_names_its_line_after_translating_the_lines_before(models, tmp_path):
    bundle, _ = models
    source = tmp_path / "in.txt"
    source.write_bytes(SENTENCES.encode() + "La niña está aquí.\n".encode("latin-1"))
    proc = cli("translate", "--model", str(bundle), "-i", str(source), "--batch-size", "1")
    one_line_error(proc, f"-i {source}:3: invalid UTF-8 at byte 5 of the line", "re-encode the file as UTF-8")
    assert len(proc.stdout.splitlines()) == 2  # lines 1 and 2 were translated and written


def test_standard_input_that_is_not_utf8_or_holds_a_nul_byte_names_its_line(models):
    _, exported = models
    proc = cli("translate", "--model", str(exported), input_text=b"The cat.\n\xff\n")
    one_line_error(proc, "stdin:2: invalid UTF-8")
    proc = cli("translate", "--model", str(exported), input_text=b"The cat.\nThe \0dog.\n")
    one_line_error(proc, "stdin:2: contains a NUL byte at byte 4", "is it a text file?")


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_an_input_file_that_is_missing_or_a_folder_says_so(models, tmp_path, kind):
    bundle, _ = models
    path = tmp_path / "in.txt"
    if kind == "folder":
        path.mkdir()
    expected = {"missing": f"-i {path}: no such file; check the path",
                "folder": f"-i {path}: a folder, not a file; give the file of sentences to translate"}[kind]
    proc = cli("translate", "--model", str(bundle), "-i", str(path))
    one_line_error(proc, expected)
    assert "disk space" not in proc.stderr


def test_an_empty_input_translates_to_nothing_and_a_bom_is_not_part_of_the_first_sentence(models, tmp_path):
    bundle, _ = models
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    proc = cli("translate", "--model", str(bundle), "-i", str(empty))
    assert proc.returncode == 0 and proc.stdout == ""
    with_bom = tmp_path / "bom.txt"
    with_bom.write_bytes(b"\xef\xbb\xbf" + SENTENCES.encode())
    plain = cli("translate", "--model", str(bundle), input_text=SENTENCES)
    assert cli("translate", "--model", str(bundle), "-i", str(with_bom)).stdout == plain.stdout != ""


# --------------------------------------------------------------------------- --model: what the folder is
@pytest.mark.parametrize("command", ["translate", "export"])
def test_a_model_folder_that_is_missing_a_file_or_empty_says_what_it_is(models, tmp_path, command):
    """translate through the command line (its flag named), export in this process."""
    bundle, _ = models
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    empty = tmp_path / "empty"
    empty.mkdir()
    weights_only = copy_of(bundle, tmp_path)
    (weights_only / "config.json").unlink()
    for given, expected in ((tmp_path / "nothere", f"--model {tmp_path / 'nothere'}: no such folder"),
                            (file, f"--model {file}: a file, not a model folder"),
                            (empty, f"--model {empty}: holds neither export.json (an exported model) nor config.json"),
                            (weights_only, f"{weights_only / 'config.json'}: missing from the model bundle; retrain "
                                           "it (dvc repro train) or restore it (dvc checkout data/model)")):
        if command == "translate":
            one_line_error(cli(command, "--model", str(given), input_text=""), expected)
        else:
            assert expected in refusal(command, given, tmp_path)
    assert not (tmp_path / "out").exists()


def test_an_exported_folder_without_export_json_is_not_called_a_bundle(models, tmp_path):
    _, exported = models
    broken = copy_of(exported, tmp_path)
    (broken / EXPORT_FILE).unlink()
    proc = cli("translate", "--model", str(broken), input_text=SENTENCES)
    one_line_error(proc, f"{broken / EXPORT_FILE}: missing, so the ONNX graphs", "export it again")
    assert "config.json" not in proc.stderr


@pytest.mark.parametrize("content, expected", [
    (b"", "unreadable"), (b'{"format": "seq2seq-onnx", "form', "unreadable"), (b"\xff\xfe{}", "unreadable"),
    (b"[1, 2]", "not an object"), (b'{"format": "seq2seq-onnx"}', "format_version is missing"),
])
def test_export_json_that_is_empty_truncated_not_utf8_or_of_the_wrong_shape(models, tmp_path, content, expected):
    _, exported = models
    broken = copy_of(exported, tmp_path)
    (broken / EXPORT_FILE).write_bytes(content)
    one_line_error(cli("translate", "--model", str(broken), input_text=SENTENCES), str(broken / EXPORT_FILE),
                   expected, "export it again")


@pytest.mark.parametrize("content, expected", [
    (b"", "unreadable"), (b'{"format_version": 1, "mod', "unreadable"), (b"\xff{}", "unreadable"),
    (b'"a string"', "not an object"),
])
def test_config_json_that_is_empty_truncated_or_not_utf8(models, tmp_path, content, expected):
    bundle, _ = models
    broken = copy_of(bundle, tmp_path)
    (broken / "config.json").write_bytes(content)
    for command in ("translate", "export"):
        message = refusal(command, broken, tmp_path)
        assert message.startswith(f"{broken / 'config.json'}: ") and expected in message, message
        assert "dvc checkout data/model" in message


def test_an_onnx_graph_that_onnx_runtime_cannot_load_or_run(models, tmp_path):
    """Checksums updated by hand: ONNX Runtime is the first to notice."""
    _, exported = models
    truncated = copy_of(exported, tmp_path / "a")
    (truncated / ENCODER_FILE).write_bytes((exported / ENCODER_FILE).read_bytes()[:500])
    rehash(truncated, ENCODER_FILE)
    one_line_error(cli("translate", "--model", str(truncated), input_text=SENTENCES),
                   f"{truncated / ENCODER_FILE}: ONNX Runtime cannot load it", "export it again")
    swapped = copy_of(exported, tmp_path / "b")  # the two graphs under each other's names
    (swapped / ENCODER_FILE).write_bytes((exported / STEP_FILE).read_bytes())
    (swapped / STEP_FILE).write_bytes((exported / ENCODER_FILE).read_bytes())
    rehash(swapped, ENCODER_FILE)
    rehash(swapped, STEP_FILE)
    one_line_error(cli("translate", "--model", str(swapped), input_text=SENTENCES),
                   f"{swapped / ENCODER_FILE}: ONNX Runtime cannot run it", "export it again")


@pytest.mark.parametrize("content", [b"", b"not a sentencepiece model", "truncated"])
def test_a_sentencepiece_model_that_is_empty_truncated_or_another_file(models, tmp_path, content):
    for folder, remedy in zip(models, ("dvc checkout data/model", "export it again")):
        broken = copy_of(folder, tmp_path / folder.name)
        spm = broken / "tgt.spm.model"
        spm.write_bytes(spm.read_bytes()[:200] if content == "truncated" else content)
        rehash(broken, "tgt.spm.model")
        message = refusal("translate", broken, tmp_path)
        assert message.startswith(f"{spm}: not a SentencePiece model (") and remedy in message, message


@pytest.mark.parametrize("cut", [0, 100, -20])
def test_weights_that_are_empty_or_truncated(models, tmp_path, cut):
    bundle, _ = models
    broken = copy_of(bundle, tmp_path)
    weights = broken / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:cut])
    rehash(broken, "weights.pt")
    for command in ("translate", "export"):
        message = refusal(command, broken, tmp_path)
        assert message.startswith(f"{weights}: unreadable weights") and "the bundle is corrupt" in message, message
        assert "dvc checkout data/model" in message


def test_a_pytorch_bundle_where_torch_is_not_installed_says_to_install_it_or_translate_an_export(models, tmp_path):
    bundle, _ = models
    proc = cli("translate", "--model", str(bundle), input_text=SENTENCES, blocked=("torch",))
    one_line_error(proc, f"--model {bundle} is a trained PyTorch model", "install torch",
                   "translate the export here (seq2seq translate --model EXPORTED)")
    assert "Traceback" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr
    one_line_error(cli("export", "--model", str(bundle), "--out", str(tmp_path / "out"), blocked=("torch",)),
                   "seq2seq export needs PyTorch", "install torch")


def test_debug_keeps_the_traceback(models, tmp_path):
    proc = cli("--debug", "translate", "--model", str(tmp_path / "nothere"), input_text="")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "no such folder" in proc.stderr


# --------------------------------------------------------------------------- the stages' readers: test sets
@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with a clean stage's output, as testset@NAME finds it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEQ2SEQ_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data" / "clean").mkdir(parents=True)
    write_tsv(tmp_path / "data" / "clean" / "train.tsv", synthetic_pairs(50))
    (tmp_path / "held").mkdir()
    return tmp_path


def prepare(name: str, **files: str) -> None:
    prepare_test_set(name, config.TestSetConfig(**files), "data/clean", f"data/tests/{name}", 1 << 20)


GOOD = synthetic_pairs(60)[50:]


def two_files(source: bytes, target: bytes, suffix: str = "") -> dict[str, str]:
    Path(f"held/t.en{suffix}").write_bytes(source)
    Path(f"held/t.es{suffix}").write_bytes(target)
    return {"path": f"held/t.en{suffix}", "target_path": f"held/t.es{suffix}"}


def tsv(content: bytes) -> dict[str, str]:
    Path("held/t.tsv").write_bytes(content)
    return {"path": "held/t.tsv"}


SOURCES = "".join(s + "\n" for s, _ in GOOD).encode()
TARGETS = "".join(t + "\n" for _, t in GOOD).encode()


@pytest.mark.parametrize("files, expected", [
    (lambda: {"path": "held/none.tsv"}, "tests.x.path: held/none.tsv does not exist; fix the path in params.yaml"),
    (lambda: {"path": "held"}, "tests.x.path: held is a folder, not a file"),
    (lambda: two_files(b"", TARGETS), "held/t.en: empty (no sentence in it); point tests.x.path at the right file"),
    (lambda: two_files(SOURCES, b"\n\n"),
     "held/t.es: empty (no sentence in it); point tests.x.target_path at the right file"),
    (lambda: two_files(SOURCES, b"\n".join(b"\xc9l gato." if n == 2 else t  # Latin-1, line 3
                                            for n, t in enumerate(TARGETS.split(b"\n")))),
     "held/t.es:3: invalid UTF-8 at byte 0 of the line; re-encode the file as UTF-8"),
    (lambda: two_files(SOURCES, TARGETS[: TARGETS.rindex(b"\n", 0, -1) + 1]),
     "held/t.en has 10 lines but held/t.es has 9"),
    (lambda: two_files(gzip.compress(SOURCES)[:-12], gzip.compress(TARGETS), ".gz"),
     "tests.x.path: held/t.en.gz: corrupt or truncated gzip file"),
    (lambda: tsv(b"a\tb\nc\td\none column only\n"),
     "held/t.tsv:3: expected 2 or 3 TAB-separated columns (source, target[, attribution]), found 1"),
    (lambda: tsv(b"\n"), "held/t.tsv: empty (no sentence pair in it); point tests.x.path at the right file"),
    (lambda: tsv(b"a\tb\nc\0\td\n"), "held/t.tsv:2: contains a NUL byte at byte 1 of the line"),
])
def test_a_test_sets_files_missing_empty_truncated_or_not_text_are_named_with_their_key(project, files, expected):
    earlier = project / "data" / "tests" / "x" / "pairs.tsv"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("kept\tguardado\n")
    with pytest.raises(Seq2SeqError) as caught:
        prepare("x", **files())
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "data.*" not in str(caught.value) and "\n" not in str(caught.value)
    assert earlier.read_text() == "kept\tguardado\n"  # the earlier output is untouched


def test_a_test_set_url_whose_file_has_another_sha256_names_the_test_sets_sha256_key(project):
    body = gzip.compress(SOURCES)
    Path("held/t.en.gz").write_bytes(body)
    url = f"file://{project / 'held' / 't.en.gz'}"
    wrong = hashlib.sha256(b"another file").hexdigest()
    Path("held/t.es").write_bytes(TARGETS)
    with pytest.raises(Seq2SeqError) as caught:
        prepare("x", path="held/t.es", target_path=url, target_sha256=wrong)
    message = str(caught.value)
    assert f"!= tests.x.target_sha256 {wrong}" in message and "set tests.x.target_sha256 to the checksum" in message
    assert "data.sha256" not in message
    with pytest.raises(Seq2SeqError, match=r"!= tests\.x\.sha256 .*set tests\.x\.sha256 to"):
        prepare("x", path=url, sha256=wrong, target_path="held/t.es")


# --------------------------------------------------------------------------- the download stage's reader
def test_the_corpus_and_validation_files_are_named_with_their_key(project):
    out = project / "data" / "raw"
    (Path("held") / "c.tsv").write_bytes(b"")
    with pytest.raises(Seq2SeqError, match=r"^held/c\.tsv: empty \(no sentence pair in it\); point data\.path at"):
        fetch_corpus(DataConfig(source="local", path="held/c.tsv"), out)
    write_tsv(Path("held/c.tsv"), GOOD)
    Path("held/v.en").write_bytes(SOURCES)
    Path("held/v.es").write_bytes(b"Hola.\n\xe9\n" + TARGETS[20:])
    valid = ParallelText(path="held/v.en", target_path="held/v.es")
    with pytest.raises(Seq2SeqError, match=r"^held/v\.es:2: invalid UTF-8 at byte 0 of the line"):
        fetch_corpus(DataConfig(source="local", path="held/c.tsv", valid=valid), out)
    url = f"file://{project / 'held' / 'c.tsv'}"
    with pytest.raises(Seq2SeqError, match=r"!= data\.sha256 0{64}; check the URL, or set data\.sha256 to"):
        fetch_corpus(DataConfig(source="url", url=url, sha256="0" * 64), out)
    assert not out.exists()  # nothing half written


# --------------------------------------------------------------------------- params.yaml
@pytest.mark.parametrize("content, expected", [
    (None, "params.yaml: not found; run from the project's folder (the one holding params.yaml)"),
    (b"", "params.yaml: empty; restore it (git checkout params.yaml)"),
    (b"# only a comment\n", "params.yaml: empty; restore it"),
    (b"data:\n  source: local\n  path: \xe9t\xe9.tsv\n", "params.yaml:3: invalid UTF-8; re-save the file as UTF-8"),
    (b"data:\n  source: [local\n",
     "params.yaml:3: invalid YAML (expected ',' or ']', but got '<stream end>'); fix the syntax"),
    (b"- data\n", "params must be a mapping of sections"),
])
def test_params_yaml_missing_empty_not_utf8_or_not_yaml(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "params.yaml").write_bytes(content)
    with pytest.raises(Seq2SeqError) as caught:
        load_params(tmp_path / "params.yaml")
    assert expected in str(caught.value)


# --------------------------------------------------------------------------- files one stage writes for the next
def test_a_stage_output_missing_cut_short_or_edited_by_hand_says_to_remake_it(tmp_path):
    """Written atomically by the pipeline, so damage comes from outside it: the error names the
    file and says how DVC remakes it."""
    from seq2seq.core.stage_outputs import read_output_json, read_output_lines
    from seq2seq.data.clean import read_split
    from seq2seq.data.encoded import load_encoded

    remake = "it is a pipeline output: remake it with dvc repro"
    split = tmp_path / "valid.tsv"
    for content, expected in ((None, "valid.tsv: missing"), (b"", "valid.tsv: empty (no sentence pair in it)"),
                              (b"a\tb\n\xff\tc\n", "valid.tsv:2: invalid UTF-8")):
        split.unlink(missing_ok=True)
        if content is not None:
            split.write_bytes(content)
        with pytest.raises(Seq2SeqError) as caught:
            read_split(split)
        assert expected in str(caught.value) and (remake in str(caught.value) or "re-encode" in str(caught.value))
    hypotheses = tmp_path / "hypotheses.txt"
    hypotheses.write_bytes(b"uno\ndos\n\xe9\n")
    with pytest.raises(Seq2SeqError, match=r"hypotheses\.txt:3: invalid UTF-8; it is a pipeline output"):
        read_output_lines(hypotheses)
    hypotheses.write_bytes(b"uno\n\ntres\n")
    assert read_output_lines(hypotheses) == ["uno", "", "tres"]  # an empty translation is a line too
    settings = tmp_path / "settings.json"
    settings.write_text('{"beam_width": 5,')
    with pytest.raises(Seq2SeqError, match=r"settings\.json: not valid JSON .*; it is a pipeline output"):
        read_output_json(settings)
    encoded = tmp_path / "train"
    encoded.mkdir()
    for name in ("src_ids", "src_offsets", "tgt_ids", "tgt_offsets"):
        (encoded / f"{name}.npy").write_bytes(b"\x93NUMPY cut short")
    with pytest.raises(Seq2SeqError, match=r"train/src_ids\.npy: not a readable encoded split .*rerun the tokenize"):
        load_encoded(encoded)
