"""Command-line entry point: ``seq2seq translate``, ``seq2seq score`` and ``seq2seq export``.

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


def _open_input(path: str | None, flag: str = "-i", what: str = "sentences to translate") -> tuple[BinaryIO, str]:
    """The input as bytes, and how errors name it (``-i FILE`` or stdin)."""
    if path is None:
        return sys.stdin.buffer, "stdin"
    try:
        return open(path, "rb"), f"{flag} {path}"
    except FileNotFoundError:
        raise Seq2SeqError(f"{flag} {path}: no such file; check the path") from None
    except IsADirectoryError:
        raise Seq2SeqError(f"{flag} {path}: a folder, not a file; give the file of {what}") from None
    except PermissionError:
        raise Seq2SeqError(f"{flag} {path}: not readable (permission denied); check its permissions") from None


def _input_lines(source: BinaryIO, where: str) -> Iterator[str]:
    """Each line as text (a UTF-8 BOM at the start dropped); a line that is not UTF-8 stops the
    command with its number (the lines before it are translated and written already)."""
    for number, line in enumerate(source, start=1):
        text = decode_line(line, where, number)
        yield text[1:] if number == 1 and text.startswith("\ufeff") else text


def _translate(args: argparse.Namespace) -> None:
    from .decoding.load import load_translator
    from .runtime.alignment import pharaoh
    from .search.settings import settings_from_flags

    settings = settings_from_flags(args)
    source, where = _open_input(args.input)
    try:
        translator = load_translator(args.model or ["data/model"], device=args.device, quantize=args.quantize,
                                     flag="--model", weights=args.weights, **asdict(settings))
        if args.alignments and not translator.attends:
            raise Seq2SeqError(f"--alignments: {' + '.join(args.model or ['data/model'])} has no attention "
                               "(model.attention: none), and alignments come from attention; drop --alignments")
        out = sys.stdout
        # Someone typing at a terminal gets each line back at once; files and pipes go in batches.
        batch_size = 1 if source.isatty() else args.batch_size
        # Each batch is written and flushed as soon as it is translated, so pipes see output early.
        for results in translator.stream(_input_lines(source, where), batch_size=batch_size,
                                         attention=args.alignments):
            for hyp in results:
                fields = [hyp.text] + ([f"{hyp.score:.4f}"] if args.scores else [])
                if args.alignments:
                    fields.append(pharaoh(hyp.alignment()))
                out.write("\t".join(fields) + "\n")
            if args.nbest > 1:
                out.write("\n")
            out.flush()
    finally:
        if args.input:
            source.close()


def _read_lines(path: str | None, flag: str, what: str) -> tuple[list[str], str]:
    """All lines of ``path`` (stdin: None) as text, and how errors name it."""
    source, where = _open_input(path, flag, what)
    try:
        return [line.rstrip("\r\n") for line in _input_lines(source, where)], where
    finally:
        if path is not None:
            source.close()


def _score(args: argparse.Namespace) -> None:
    from .decoding.load import load_translator

    sources, source_where = _read_lines(args.source, "--source", "source sentences")
    given, where = _read_lines(args.input, "-i", "translations")
    if args.nbest:  # as translate --nbest prints them: lines "translation[TAB score]", a blank line after each list
        groups: list[list[str]] = []
        current: list[str] | None = None
        for line in given:
            if line or current is None:  # a blank line opening a list: an empty sentence's empty translation
                current = current if current is not None else []
                current.append(line.split("\t")[0])
            else:
                groups.append(current)
                current = None
        if current:
            groups.append(current)
    else:
        groups = [[line] for line in given]
    if len(groups) != len(sources):
        unit = "n-best lists (separated by blank lines)" if args.nbest else "lines"
        raise Seq2SeqError(f"{where}: {len(groups):,} {unit}, but {source_where} has {len(sources):,} lines; give "
                           "one translation (or, with --nbest, one n-best list) per source line")
    translator = load_translator(args.model or ["data/model"], device=args.device, flag="--model",
                                 weights=args.weights, length_penalty=args.length_penalty,
                                 batch_size=args.batch_size)
    pairs = [(s, t) for s, group in zip(sources, groups) for t in group]
    scored = translator.score([s for s, _ in pairs], [t for _, t in pairs])
    out, at = sys.stdout, 0
    for group in groups:
        for one in scored[at:at + len(group)]:
            fields = [one.text, f"{one.score:.4f}", f"{one.log_prob:.4f}"]
            if args.per_token:
                fields.append(" ".join(f"{p}:{lp:.4f}" for p, lp in zip(one.target_pieces, one.token_log_probs)))
            out.write("\t".join(fields) + "\n")
        at += len(group)
        if args.nbest:
            out.write("\n")


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
    tr.add_argument("--alignments", action="store_true",
                    help="append a TAB and the word alignment from attention, Pharaoh format (i-j: source word i, "
                         "target word j, from 0; one source word per target word)")
    sc = sub.add_parser("score", help="score given translations: the model's (or ensemble's) log-probability",
                        description="Print, per translation: translation TAB score TAB log-probability, where score "
                                    "is the log-probability divided by the length penalty, as a search ranks it.")
    sc.add_argument("--model", action="append", help="as translate's --model (more than once: an ensemble)")
    sc.add_argument("--weights", type=float, nargs="+", help="an ensemble's weights, one per --model (default: equal)")
    sc.add_argument("--source", required=True, help="the source sentences, one per line")
    sc.add_argument("--input", "-i", help="the translations, one per source line (default: stdin)")
    sc.add_argument("--nbest", action="store_true", help="the input is n-best lists as translate --nbest prints "
                    "them (a blank line after each source's list; a TAB and what follows it on a line are ignored)")
    sc.add_argument("--per-token", action="store_true",
                    help="append a TAB and each subword piece's log-probability (piece:log_prob, </s> last)")
    sc.add_argument("--length-penalty", type=float, default=1.0, help="GNMT alpha of the score (0: log-probability)")
    sc.add_argument("--batch-size", type=int, default=64, help="sentences per batch")
    sc.add_argument("--device", default="auto")
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
    elif args.command == "score":
        run_guarded(lambda: _score(args), "score", args.debug)
    else:
        run_guarded(lambda: _translate(args), "translate", args.debug)


if __name__ == "__main__":
    main()
