"""A model bundle's files: their names, the format version, and reading ``config.json`` alone.

No torch here: a stage that only needs to know about a bundle (e.g. which MLflow run made it)
reads it without loading the model (:mod:`.bundle` loads the model).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..core.errors import ModelBundleError

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
SRC_SPM = "src.spm.model"
TGT_SPM = "tgt.spm.model"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


RESTORE = "retrain it (dvc repro train) or restore it (dvc checkout data/model)"
# config.json's fields and their types (``model`` is checked field by field as params are)
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int, "model": dict, "src_vocab_size": int, "tgt_vocab_size": int, "sha256": dict,
    "src_lang": str, "tgt_lang": str, "mlflow": dict,
}
KIND_NAMES = {int: "an integer", str: "a string", dict: "an object"}
REQUIRED = ("format_version", "model", "src_vocab_size", "tgt_vocab_size")


def check_bundle_info(info: Any, config_path: Path) -> dict[str, Any]:
    """config.json's shape, checked once: an object whose fields have their types (a one-line
    :class:`ModelBundleError` naming the file and the field otherwise)."""
    if not isinstance(info, dict):
        raise ModelBundleError(f"{config_path}: holds a JSON {type(info).__name__}, not an object; {RESTORE}")
    for name in REQUIRED:
        if name not in info:
            raise ModelBundleError(f"{config_path}: {name} is missing; {RESTORE}")
    for name, kind in FIELD_TYPES.items():
        value = info.get(name)
        if name in info and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ModelBundleError(f"{config_path}: {name} is {json.dumps(value)[:60]}, not {KIND_NAMES[kind]}; "
                                   f"{RESTORE}")
    for name, digest in info.get("sha256", {}).items():
        if not isinstance(digest, str):
            raise ModelBundleError(f"{config_path}: sha256.{name} is not a string; {RESTORE}")
    run_id = info.get("mlflow", {}).get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        raise ModelBundleError(f"{config_path}: mlflow.run_id is not a string; {RESTORE}")
    return info


def load_bundle_info(path: str | Path) -> dict[str, Any]:
    """config.json of a bundle, checked, without loading weights (e.g. to find its MLflow run)."""
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise ModelBundleError(f"{Path(path)}: not a model bundle ({CONFIG_FILE} missing); point to the train "
                               "stage's data/model")
    try:
        info = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelBundleError(f"{config_path}: unreadable ({str(err)[:80]}); {RESTORE}") from None
    return check_bundle_info(info, config_path)
