"""What exporting costs in BLEU: a trained model's test BLEU from PyTorch (fp32, int8) and from
its ONNX export (fp32, int8), beam 5 and greedy, on one test set of the pipeline.

    python bench/export_quality.py [--model data/model] [--test data/tests/test/pairs.tsv] [--out FILE.json]

Run after `make run` (the default run's model and test set). sacreBLEU, cased, 13a; the
exports go to a temporary folder. Prints a Markdown table; --out also writes the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import sacrebleu

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seq2seq.data.clean import read_split  # noqa: E402
from seq2seq.decoding.translator import Translator  # noqa: E402
from seq2seq.export.onnx_export import export_onnx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="data/model")
    parser.add_argument("--test", default="data/tests/test/pairs.tsv")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    test = read_split(args.test)
    sources, references = list(test["source"]), list(test["target"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(args.model, Path(tmp) / "fp32")
        export_onnx(args.model, Path(tmp) / "int8", quantize="int8")
        models = {"PyTorch fp32": (args.model, "none"), "PyTorch int8": (args.model, "int8"),
                  "ONNX fp32": (Path(tmp) / "fp32", "none"), "ONNX int8": (Path(tmp) / "int8", "none")}
        for name, (path, quantize) in models.items():
            translator = Translator.load(path, device="cpu", quantize=quantize)
            row = {"model": name}
            for beam in (5, 1):
                started = time.perf_counter()
                hypotheses = translator.translate(sources, beam=beam)
                row[f"beam{beam}_seconds"] = round(time.perf_counter() - started, 2)
                row[f"beam{beam}_bleu"] = round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2)
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    print(f"{args.test}: {len(sources):,} sentences\n")
    print("| model | beam 5 BLEU | greedy BLEU |\n|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['beam5_bleu']:.2f} | {row['beam1_bleu']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps({"test": args.test, "sentences": len(sources), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
