"""The project's root folder: where the MLflow store lives and relative ``$SEQ2SEQ_MIRROR`` paths start."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The git work tree of the DVC project a stage runs in.

    DVC sets ``$DVC_ROOT`` for every stage, also under ``dvc exp run --temp``. A benchmark
    recipe (``recipes/NAME/``) is a DVC project of its own inside the repository, so its
    ``$DVC_ROOT`` is its folder: the root is the nearest folder upwards holding ``.git``.
    Outside git, the DVC root (or the current folder outside DVC) is the root.
    """
    start = Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start
