"""One-line errors: how every stage and command turns a user error into a clear exit."""
from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Callable, Sequence

from .errors import Seq2SeqError

WHAT_TO_DO = {
    errno.ENOSPC: "free some disk space and rerun",
    errno.EDQUOT: "free some disk space (or raise the quota) and rerun",
    errno.EFBIG: "the file is over a size limit (ulimit -f): raise it and rerun",
    errno.EROFS: "the file system is read-only: run from a writable checkout",
    errno.EACCES: "check the permissions of that path",
    errno.EPERM: "check the permissions of that path",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file there, not a folder",
    errno.ENOTDIR: "check the path (a part of it is a file)",
    None: "check free disk space and write permissions",
}


def debug_enabled(argv: Sequence[str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    return "--debug" in argv or os.environ.get("SEQ2SEQ_DEBUG", "") not in ("", "0")


def run_guarded(main: Callable[[], None], name: str, debug: bool = False) -> None:
    """Run ``main``; a user error, a failed write (disk full, read-only folder) or Ctrl-C
    becomes one line on stderr and exit status 1 (130 for Ctrl-C).

    ``--debug`` (on the command line, or ``debug``) or ``SEQ2SEQ_DEBUG=1`` shows the traceback as well.
    """
    try:
        main()
    except Seq2SeqError as err:
        if debug or debug_enabled():
            traceback.print_exc()
        print(f"error: {name}: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"error: {name}: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as err:  # disk full, read-only folder, permissions: say which file and what to do
        if debug or debug_enabled():
            traceback.print_exc()
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {name}: {where}{err.strerror or err}; {WHAT_TO_DO.get(err.errno, WHAT_TO_DO[None])} "
              "(outputs written before are unchanged)", file=sys.stderr)
        sys.exit(1)
