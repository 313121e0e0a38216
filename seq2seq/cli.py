"""Command-line entry point: ``seq2seq translate`` and ``seq2seq export``.

Translating an exported folder needs no torch: this module imports torch-backed code only
when the model is a trained bundle (or when exporting one)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import BinaryIO, Iterator, Sequence

from .core.errors import Seq2SeqError
from .core.guard import run_guarded
from .data.lines import decode_line
from .search.settings import add_search_flags


def _open_input(path: str | None) -> tuple[BinaryIO, str]:
    """The input as bytes, and how errors name it (``-i FILE`` or stdin)."""
    if path is None:
        return sys.stdin.buffer, "stdin"
    try:
        return open(path, "rb"), f"-i {path}"
    except FileNotFoundError:
        raise Seq2SeqError(f"-i {path}: no such file; check the path") from None
    except IsADirectoryError:
        raise Seq2SeqError(f"-i {path}: a folder, not a file; give the file of sentences to translate") from None
    except PermissionError:
        raise Seq2SeqError(f"-i {path}: not readable (permission denied); check its permissions") from None


def _input_lines(source: BinaryIO, where: str) -> Iterator[str]:
    """Each line as text (a UTF-8 BOM at the start dropped); a line that is not UTF-8 stops the
    command with its number (the lines before it are translated and written already)."""
    for number, line in enumerate(source, start=1):
        text = decode_line(line, where, number)
        yield text[1:] if number == 1 and text.startswith("\ufeff") else text


def _translate(args: argparse.Namespace) -> None:
    from .decoding.load import load_translator
    from .search.settings import settings_from_flags

    settings = settings_from_flags(args)
    source, where = _open_input(args.input)
    try:
        translator = load_translator(args.model or ["data/model"], device=args.device, quantize=args.quantize,
                                     flag="--model", weights=args.weights, **asdict(settings))
        out = sys.stdout
        # Someone typing at a terminal gets each line back at once; files and pipes go in batches.
        batch_size = 1 if source.isatty() else args.batch_size
        # Each batch is written and flushed as soon as it is translated, so pipes see output early.
        for results in translator.stream(_input_lines(source, where), batch_size=batch_size):
            for text, score in results:
                out.write(f"{text}\t{score:.4f}\n" if args.scores else f"{text}\n")
            if args.nbest > 1:
                out.write("\n")
            out.flush()
    finally:
        if args.input:
            source.close()


def _export(args: argparse.Namespace) -> None:
    try:
        from .export.onnx_export import export_onnx
    except ImportError as err:
        from .decoding.load import needs_torch

        raise needs_torch(err, "seq2seq export") or err

    info = export_onnx(args.model, args.out, quantize=args.quantize)
    print(f"export: {args.out}: {info['model']['cell']} / {info['model']['attention']} model as ONNX "
          f"({info['precision']}); translate with: seq2seq translate --model {args.out}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seq2seq", description="Recurrent encoder-decoder translation.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("translate", help="translate lines from stdin or a file")
    tr.add_argument("--model", action="append",
                    help="model folder (a trained bundle or an exported folder) or MLflow model URI (runs:/..., "
                         "models:/...); default data/model. Given more than once: an ensemble of trained models, "
                         "each step scored by the mean of their log-probabilities")
    tr.add_argument("--weights", type=float, nargs="+", help="an ensemble's weights, one per --model (default: equal)")
    tr.add_argument("--input", "-i", help="input file (default: stdin)")
    add_search_flags(tr)  # --beam, --nbest (printed one per line, then a blank line), --batch-size, ...
    tr.add_argument("--quantize", choices=["none", "int8"], default="none",
                    help="int8: dynamic int8 quantization, faster on CPU (scores differ slightly)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--scores", action="store_true", help="append a TAB and the hypothesis score")
    ex = sub.add_parser("export", help="export a trained model to a folder that translates without torch")
    ex.add_argument("--model", default="data/model", help="trained bundle folder or MLflow model URI")
    ex.add_argument("--format", choices=["onnx"], default="onnx", help="onnx: the encoder and one decoder step as "
                    "ONNX graphs, with the tokenizers and a config (run by ONNX Runtime and NumPy)")
    ex.add_argument("--quantize", choices=["none", "int8"], default="none",
                    help="int8: ONNX Runtime's dynamic int8 quantization (smaller, faster on CPU)")
    ex.add_argument("--out", required=True, help="the folder to write (new, or an earlier export to replace)")
    args = parser.parse_args(argv)
    if args.command == "export":
        run_guarded(lambda: _export(args), "export", args.debug)
    else:
        run_guarded(lambda: _translate(args), "translate", args.debug)


if __name__ == "__main__":
    main()
