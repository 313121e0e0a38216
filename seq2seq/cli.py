"""Command-line entry point: ``seq2seq translate`` and ``seq2seq export``.

Translating an exported folder needs no torch: this module imports torch-backed code only
when the model is a trained bundle (or when exporting one)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Sequence

from .core.guard import run_guarded
from .core.search_settings import add_search_flags


def _translate(args: argparse.Namespace) -> None:
    from .core.search_settings import settings_from_flags
    from .decoding.locate import locate_model
    from .runtime.folder import is_export_folder

    settings = settings_from_flags(args)
    folder = locate_model(args.model)
    if is_export_folder(folder):
        from .runtime.translator import OnnxTranslator as Loader
    else:
        from .decoding.translator import Translator as Loader  # type: ignore[assignment]
    translator = Loader.load(folder, device=args.device, quantize=args.quantize, **asdict(settings))
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


def _export(args: argparse.Namespace) -> None:
    from .export.onnx_export import export_onnx

    info = export_onnx(args.model, args.out, quantize=args.quantize)
    print(f"export: {args.out}: {info['model']['cell']} / {info['model']['attention']} model as ONNX "
          f"({info['precision']}); translate with: seq2seq translate --model {args.out}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seq2seq", description="Recurrent encoder-decoder translation.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("translate", help="translate lines from stdin or a file")
    tr.add_argument("--model", default="data/model",
                    help="model folder (a trained bundle or an exported folder) or MLflow model URI (runs:/..., models:/...)")
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
        run_guarded(lambda: _export(args), "export")
    else:
        run_guarded(lambda: _translate(args), "translate")


if __name__ == "__main__":
    main()
