"""Where a model is: a local folder as given, or the folder inside an MLflow model fetched from its URI.

A model is a bundle (``config.json`` and ``weights.pt``, :mod:`.bundle`) or an exported folder
(``export.json``, :mod:`seq2seq.runtime.folder`). No torch here: the exported model's runtime
locates models too.
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ModelBundleError
from ..runtime.folder import EXPORT_FILE, REDO
from .files import CONFIG_FILE, RESTORE, WEIGHTS_FILE

GIVE = "give a trained model's folder (data/model), an exported one (seq2seq export) or an MLflow model URI"


def is_model_folder(path: Path) -> bool:
    return (path / EXPORT_FILE).is_file() or ((path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file())


def locate_model(path_or_uri: str | Path) -> Path:
    """A model folder as given, or the model folder inside an MLflow model downloaded from its URI
    (``runs:/ID/model``, ``models:/NAME/1``, ``models:/m-ID``)."""
    text = str(path_or_uri)
    if Path(text).exists() or ":/" not in text:
        return Path(text)
    try:
        import mlflow
    except ImportError:
        raise ModelBundleError(f"{text}: an MLflow model URI needs mlflow (pip install mlflow), or give the "
                               "model's folder") from None
    from ..core.mlflow_store import configure_tracking

    configure_tracking()
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    except Exception as err:  # MLflow raises several types for unknown runs/models
        raise ModelBundleError(f"{text}: cannot fetch this MLflow model ({str(err).splitlines()[0]})") from None
    found = sorted(p for p in [local, *local.rglob("*")] if p.is_dir() and is_model_folder(p))
    if not found:
        raise ModelBundleError(f"{text}: the MLflow model holds no seq2seq model folder")
    return found[0]


def model_kind(folder: Path, given: str | Path, flag: str = "--model", give: str = GIVE) -> str:
    """``"export"`` (an exported folder) or ``"bundle"`` (a trained model's), or a one-line
    :class:`ModelBundleError` that says what ``folder`` (given as ``given``) is instead and
    what to ``give``."""
    if not folder.exists():
        raise ModelBundleError(f"{flag} {given}: no such folder; {give}")
    if not folder.is_dir():
        raise ModelBundleError(f"{flag} {given}: a file, not a model folder; {give}")
    if (folder / EXPORT_FILE).is_file():
        return "export"
    if (folder / CONFIG_FILE).is_file():
        return "bundle"
    if any(folder.glob("*.onnx")):
        raise ModelBundleError(f"{folder / EXPORT_FILE}: missing, so the ONNX graphs in {folder} cannot be read; "
                               f"{REDO}")
    if (folder / WEIGHTS_FILE).is_file():
        raise ModelBundleError(f"{folder / CONFIG_FILE}: missing from the model bundle; {RESTORE}")
    raise ModelBundleError(f"{flag} {given}: holds neither {EXPORT_FILE} (an exported model) nor {CONFIG_FILE} (a "
                           f"trained one); {give}")
