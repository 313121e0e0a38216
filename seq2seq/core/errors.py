"""User-facing errors: one line that says what is wrong, where, and what to do."""
from __future__ import annotations


class Seq2SeqError(Exception):
    """An error caused by the user's input (params, files, models), not by a bug.

    The command-line entry points print ``str(error)`` as a single line and exit
    with a non-zero status instead of showing a traceback.
    """


class ParamError(Seq2SeqError):
    """A value in ``params.yaml`` (or on the command line) is unknown or invalid."""

    def __init__(self, key: str, value: object, allowed: str, file: str = "params.yaml") -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{file}: {key}: got {value!r}; {allowed}")


class DataError(Seq2SeqError):
    """A corpus file is malformed or unusable."""


class ModelBundleError(Seq2SeqError):
    """A model bundle is missing, corrupt or inconsistent."""
