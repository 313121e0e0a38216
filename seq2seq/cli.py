"""Command-line entry point: ``seq2seq translate``."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Sequence

from .core.guard import run_guarded
from .core.search_settings import add_search_flags


def _translate(args: argparse.Namespace) -> None:
    from .core.search_settings import settings_from_flags
    from .decoding.translator import Translator

    settings = settings_from_flags(args)
    translator = Translator.load(args.model, device=args.device, quantize=args.quantize, **asdict(settings))
    source = open(args.input, encoding="utf-8") if args.input else sys.stdin
    out = sys.stdout
    # Someone typing at a terminal gets each line back at once; files and pipes go in batches.
    batch_size = 1 if source.isatty() else args.batch_size
    try:
        # Each batch is written and flushed as soon as it is translated, so pipes see output early.
        for results in translator.stream(source, batch_size=batch_size):
            for text, score in results:
                out.write(f"{text}\t{score:.4f}\n" if args.scores else f"{text}\n")
            if args.nbest > 1:
                out.write("\n")
            out.flush()
    finally:
        if args.input:
            source.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seq2seq", description="Recurrent encoder-decoder translation.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("translate", help="translate lines from stdin or a file")
    tr.add_argument("--model", default="data/model", help="bundle folder or MLflow model URI (runs:/..., models:/...)")
    tr.add_argument("--input", "-i", help="input file (default: stdin)")
    add_search_flags(tr)  # --beam, --nbest (printed one per line, then a blank line), --batch-size, ...
    tr.add_argument("--quantize", choices=["none", "int8"], default="none",
                    help="int8: dynamic int8 quantization, faster on CPU (scores differ slightly)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--scores", action="store_true", help="append a TAB and the hypothesis score")
    args = parser.parse_args(argv)
    run_guarded(lambda: _translate(args), "translate")


if __name__ == "__main__":
    main()
