"""Command-line entry point: ``seq2seq translate``."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .guard import run_guarded


def _translate(args: argparse.Namespace) -> None:
    from .translator import Translator

    translator = Translator.load(args.model, device=args.device, beam=args.beam, nbest=args.nbest,
                                 batch_size=args.batch_size, length_penalty=args.length_penalty,
                                 early_stop=not args.full_beam,
                                 sampling=args.sample, temperature=args.temperature, top_k=args.top_k,
                                 top_p=args.top_p, seed=args.seed, quantize=args.quantize)
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
    tr.add_argument("--beam", type=int, default=5)
    tr.add_argument("--nbest", type=int, default=1, help="print this many translations per line (beam: the n best, <= --beam; --sample: n "
                    "samples), then a blank line")
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--length-penalty", type=float, default=1.0)
    tr.add_argument("--full-beam", action="store_true",
                    help="beam: search each sentence until --beam hypotheses have ended, not only until its "
                         "best one has (slower)")
    tr.add_argument("--sample", action="store_true",
                    help="draw each token from the model's distribution instead of beam search")
    tr.add_argument("--temperature", type=float, default=1.0, help="sampling: softmax temperature")
    tr.add_argument("--top-k", type=int, default=0, help="sampling: keep the k most likely tokens (0: all)")
    tr.add_argument("--top-p", type=float, default=1.0, help="sampling: nucleus probability mass (1: all)")
    tr.add_argument("--seed", type=int, default=1, help="sampling: random seed")
    tr.add_argument("--quantize", choices=["none", "int8"], default="none",
                    help="int8: dynamic int8 quantization, faster on CPU (scores differ slightly)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--scores", action="store_true", help="append a TAB and the hypothesis score")
    args = parser.parse_args(argv)
    for name in ("beam", "nbest", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    run_guarded(lambda: _translate(args), "translate")


if __name__ == "__main__":
    main()
