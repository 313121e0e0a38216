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


def load_bundle_info(path: str | Path) -> dict[str, Any]:
    """config.json of a bundle, without loading weights (e.g. to find its MLflow run)."""
    config_path = Path(path) / CONFIG_FILE
    try:
        return json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelBundleError(f"{config_path}: unreadable ({err}); rerun the train stage") from None
