"""The local files that params.yaml names, and the dvc.yaml entries that declare them as deps.

DVC reruns a stage when one of its declared deps changes. A URL in params.yaml is pinned by its
sha256, so another file means other params; a local file (``data.path``, ``data.valid.path``,
``tests.NAME.target_path``, ...) can change under the same params. Each such file must therefore
be a dep of the stage that reads it:

* the ``download`` stage reads the corpus and the official validation set: one dep line each;
* ``testset@NAME`` reads test set NAME: every test set shares one ``foreach`` template, so its
  files come through two slots, ``${item.reads.source}`` and ``${item.reads.target}``, filled in by
  a ``vars`` entry of dvc.yaml that DVC merges into ``tests.NAME``. A test set read from one TSV
  fills both slots with it; a slot with no local file names ``data/clean``, a dep the stage has
  anyway.

``python tools/stage_deps.py`` writes these entries from params.yaml (for the project and each
recipe); the stages that read the files check at their start that dvc.yaml declares what they
are about to read (:func:`check_declared`), so a file added to params.yaml but not to dvc.yaml
stops the run with one line that says what to do, instead of a result DVC cannot keep up to date.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core.errors import Seq2SeqError
from .config import DataConfig, ParallelText, Params, TestSetConfig, is_url

PIPELINE_FILE = "dvc.yaml"
NO_FILE = "data/clean"  # a test-set slot with no local file: a dep testset@NAME has anyway
REGENERATE = "python tools/stage_deps.py"


def _local(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(key, location) for key, location in pairs if location and not is_url(location)]


def _files(text: ParallelText, key: str) -> list[tuple[str, str]]:
    return [(f"{key}.path", text.path), (f"{key}.target_path", text.target_path)]


def corpus_inputs(data: DataConfig) -> list[tuple[str, str]]:
    """(params key, path) of each local file the download stage reads: the corpus (source local)
    and the official validation set."""
    corpus = _files(ParallelText(data.path, "", data.target_path), "data") if data.source == "local" else []
    return _local(corpus + _files(data.valid, "data.valid"))


def test_set_inputs(name: str, test_set: TestSetConfig) -> list[tuple[str, str]]:
    """(params key, path) of each local file testset@NAME reads."""
    return [] if test_set.random_split else _local(_files(test_set, f"tests.{name}"))


def test_set_slots(name: str, test_set: TestSetConfig) -> dict[str, str]:
    """The ``reads`` entry of test set ``name`` in dvc.yaml's vars: its source and target slots."""
    def slot(location: str) -> str:
        return location if location and not test_set.random_split and not is_url(location) else NO_FILE

    source = slot(test_set.path)
    return {"source": source, "target": slot(test_set.target_path) if test_set.target_path else source}


def pipeline_inputs(params: Params) -> dict[str, Any]:
    """What dvc.yaml must declare for ``params``: ``download`` (local paths, in order) and ``tests``
    (each test set's slots)."""
    return {"download": list(dict.fromkeys(path for _, path in corpus_inputs(params.data))),
            "tests": {name: test_set_slots(name, t) for name, t in params.tests.items()}}


def _read_pipeline(folder: Path) -> dict[str, Any] | None:
    path = folder / PIPELINE_FILE
    if not path.is_file():
        return None  # a stage run by hand outside a DVC project: nothing to check against
    try:
        pipeline = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise Seq2SeqError(f"{path}: unreadable ({type(err).__name__}); restore it (git checkout {PIPELINE_FILE})") \
            from None
    return pipeline if isinstance(pipeline, dict) else {}


def declared_test_slots(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The ``tests`` entries of dvc.yaml's vars: {NAME: {"reads": {...}}}."""
    for entry in pipeline.get("vars") or []:
        if isinstance(entry, dict) and isinstance(entry.get("tests"), dict):
            return entry["tests"]
    return {}


def check_declared(params: Params, stage: str, test_set: str | None = None, folder: str | Path = ".") -> None:
    """Before ``stage`` reads a local file that params.yaml names, make sure the project's dvc.yaml
    declares it as that stage's dep (else DVC would not rerun the stage when the file changes): a
    one-line :class:`Seq2SeqError` naming the file, its key and the fix otherwise."""
    pipeline = _read_pipeline(Path(folder))
    if pipeline is None:
        return
    where = Path(folder) / PIPELINE_FILE
    fix = f"run `{REGENERATE}`, then dvc repro"
    if stage == "download":
        deps = ((pipeline.get("stages") or {}).get("download") or {}).get("deps") or []
        for key, path in corpus_inputs(params.data):
            if path not in deps:
                raise Seq2SeqError(f"{where}: the download stage does not list {path} ({key}) among its deps "
                                   f"(params.yaml changed since dvc.yaml was written), so DVC cannot see it change; "
                                   f"{fix}")
        return
    assert test_set is not None
    expected = test_set_slots(test_set, params.tests[test_set])
    declared = (declared_test_slots(pipeline).get(test_set) or {}).get("reads")
    if declared != expected:
        missing = [f"{path} ({key})" for key, path in test_set_inputs(test_set, params.tests[test_set])
                   if path not in (declared or {}).values()]
        what = (f"does not list {', '.join(missing)} among its deps" if missing else
                f"lists files that tests.{test_set} no longer names")
        raise Seq2SeqError(f"{where}: testset@{test_set} {what} (params.yaml changed since dvc.yaml was written), so "
                           f"DVC cannot keep its scores up to date; {fix}")
