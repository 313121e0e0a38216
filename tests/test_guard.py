"""Every stage's failure path: one line on stderr, a non-zero exit, a traceback only when asked."""
import errno

import pytest

from seq2seq.core.errors import ParamError
from seq2seq.core.guard import run_guarded


def fail_with(error):
    def main():
        raise error
    return main


@pytest.mark.parametrize("error, expected", [
    (ParamError("decode.beam_width", 0, "use an integer >= 1"),
     "error: decode: params.yaml: decode.beam_width: got 0; use an integer >= 1"),
    (OSError(errno.EROFS, "Read-only file system", "data/decode/hypotheses.txt"),
     "error: decode: data/decode/hypotheses.txt: Read-only file system; the file system is read-only: run from a "
     "writable checkout (outputs written before are unchanged)"),
    (OSError(errno.ENOSPC, "No space left on device", "data/model/weights.pt"),
     "error: decode: data/model/weights.pt: No space left on device; free some disk space and "
     "rerun (outputs written before are unchanged)"),
])
def test_failures_are_one_line_and_exit_1(error, expected, capsys, monkeypatch):
    monkeypatch.delenv("SEQ2SEQ_DEBUG", raising=False)
    monkeypatch.setattr("sys.argv", ["stages.decode"])
    with pytest.raises(SystemExit) as info:
        run_guarded(fail_with(error), "decode")
    assert info.value.code == 1
    assert capsys.readouterr().err == expected + "\n"


def test_debug_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_DEBUG", "1")
    with pytest.raises(SystemExit):
        run_guarded(fail_with(OSError(errno.EACCES, "Permission denied", "data/raw")), "download")
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: download: data/raw: Permission")


def test_ctrl_c_exits_130(capsys):
    with pytest.raises(SystemExit) as info:
        run_guarded(fail_with(KeyboardInterrupt()), "train")
    assert info.value.code == 130 and capsys.readouterr().err == "error: train: interrupted\n"
