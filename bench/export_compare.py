"""The exported model against PyTorch and Joey NMT: decoding speed and BLEU on Multi30k en->de.

    python bench/export_compare.py [--epochs 3] [--repeats 3] [--work bench/work] [--phases ...]

At Joey NMT's reference configuration (../shared/peers/joeynmt/; see bench/joeynmt_compare.py,
whose data, setup and train phases and trained models this reuses), test_2016_flickr (1,000
sentences) is translated greedy and with beam 5 by five decoders, taking turns ``--repeats``
times, each run a process of its own:

  joey          Joey NMT 2.3.0 (its own venv), its trained model
  pytorch       this project's model, PyTorch fp32 (``seq2seq translate --model data/model``)
  pytorch-int8  the same, PyTorch dynamic int8 (``--quantize int8``)
  onnx          ``seq2seq export`` of the same model, ONNX Runtime + NumPy, fp32
  onnx-int8     ``seq2seq export --quantize int8``, ONNX Runtime's dynamic int8

Reported per decoder and beam: sentences/s of the search alone and of the whole process
(start, load, translate; medians of the turns), BLEU and chrF (sacreBLEU, cased, 13a), and
ratios against Joey NMT and against PyTorch fp32, all measured in this one invocation.
Results: WORK/results/export_e{epochs}.json and a Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import joeynmt_compare as peer  # noqa: E402  (the peer's phases and decoders)

ROOT = peer.ROOT
DECODERS = ("joey", "pytorch", "pytorch-int8", "onnx", "onnx-int8")


def exported(work: Path, epochs: int, precision: str) -> Path:
    return work / "ours" / f"onnx_e{epochs}_{precision}"


def phase_export(work: Path, epochs: int) -> None:
    bundle = work / "ours" / f"model_e{epochs}"
    for precision, quantize in (("fp32", "none"), ("int8", "int8")):
        out = exported(work, epochs, precision)
        if not (out / "export.json").exists():
            peer.sh([sys.executable, "-m", "seq2seq.cli", "export", "--model", str(bundle), "--format", "onnx",
                     "--quantize", quantize, "--out", str(out)], cwd=ROOT)


def decode(work: Path, epochs: int, decoder: str, beam: int, hyp: Path) -> dict:
    if decoder == "joey":
        return peer.joey_decode(work, epochs, beam, hyp)
    if decoder.startswith("pytorch"):
        return peer.ours_decode(work, epochs, beam, hyp, "int8" if decoder.endswith("int8") else "none")
    folder = exported(work, epochs, "int8" if decoder.endswith("int8") else "fp32")
    record = hyp.with_suffix(".json")
    # a process that never imports torch, as on a deployment machine (see onnx_decode)
    wall = peer.timed([sys.executable, __file__, "--onnx-decode", str(folder), str(beam),
                       str(work / "data" / "test_2016_flickr.en"), str(hyp), str(record)], hyp.with_suffix(".time"),
                      cwd=ROOT)
    return {"wall_seconds": wall, "decode_seconds": json.loads(record.read_text())["decode_seconds"]}


def onnx_decode(folder: str, beam: str, source: str, hyp: str, record: str) -> None:
    """Translate ``source`` with an exported folder, without torch (the settings of
    bench/ours_multi30k.py's decode: batches of 64, length penalty 1.0)."""
    import time

    from seq2seq.runtime.translator import OnnxTranslator

    translator = OnnxTranslator.load(folder, beam=int(beam), batch_size=64, length_penalty=1.0)
    lines = Path(source).read_text(encoding="utf-8").splitlines()
    started = time.perf_counter()
    hypotheses = translator.translate(lines)
    seconds = time.perf_counter() - started
    assert "torch" not in sys.modules, "the exported model's decoding imported torch"
    Path(hyp).write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    Path(record).write_text(json.dumps({"decode_seconds": seconds, "sentences": len(lines)}))


def phase_decode(work: Path, epochs: int, repeats: int) -> None:
    results = work / "results"
    out_file = results / f"export_e{epochs}.json"
    sentences = len((work / "data" / "test_2016_flickr.en").read_text().splitlines())
    runs: dict[str, list[dict]] = {}
    for _ in range(repeats):
        for beam in peer.BEAMS:
            for decoder in DECODERS:
                hyp = results / f"export_{decoder}_beam{beam}_e{epochs}.hyp"
                runs.setdefault(f"{decoder}|{beam}", []).append(decode(work, epochs, decoder, beam, hyp))
    summary: dict = {"machine": machine(), "sentences": sentences, "repeats": repeats, "epochs": epochs}
    ref = work / "data" / "test_2016_flickr.de"
    for key, rs in runs.items():
        decoder, beam = key.split("|")
        bleu, chrf = peer.bleu_chrf(results / f"export_{decoder}_beam{beam}_e{epochs}.hyp", ref)
        summary[key] = {
            "decode_sentences_per_second": sentences / statistics.median(r["decode_seconds"] for r in rs),
            "process_sentences_per_second": sentences / statistics.median(r["wall_seconds"] for r in rs),
            "bleu": bleu, "chrf": chrf, "runs": rs,
        }
    out_file.write_text(json.dumps(summary, indent=2))


def machine() -> dict:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": len(__import__("os").sched_getaffinity(0)),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onnxruntime": __import__("onnxruntime").__version__, "torch": torch.__version__}


def phase_report(work: Path, epochs: int) -> str:
    data = json.loads((work / "results" / f"export_e{epochs}.json").read_text())
    lines = [f"Multi30k en->de test_2016_flickr ({data['sentences']:,} sentences), models trained {epochs} epochs at "
             f"Joey NMT's reference configuration; {data['repeats']} turns each, medians; "
             f"{data['machine']['cores']} cores, {data['machine']['torch_cpu_capability']}, "
             f"onnxruntime {data['machine']['onnxruntime']}, torch {data['machine']['torch']}.", "",
             "| decoder | search | sentences/s (search) | sentences/s (whole process) | × Joey NMT | × PyTorch fp32 "
             "| BLEU | chrF |", "|---|---|---|---|---|---|---|---|"]
    for beam in peer.BEAMS:
        joey = data[f"joey|{beam}"]["decode_sentences_per_second"]
        torch_fp32 = data[f"pytorch|{beam}"]["decode_sentences_per_second"]
        for decoder in DECODERS:
            row = data[f"{decoder}|{beam}"]
            speed = row["decode_sentences_per_second"]
            lines.append(f"| {decoder} | {'greedy' if beam == 1 else f'beam {beam}'} | {speed:.1f} | "
                         f"{row['process_sentences_per_second']:.1f} | {speed / joey:.2f} | {speed / torch_fp32:.2f} | "
                         f"{row['bleu']:.2f} | {row['chrf']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--onnx-decode"]:
        onnx_decode(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    phases = ["data", "setup", "train", "export", "decode", "report"]
    parser.add_argument("--phases", nargs="+", default=phases, choices=phases)
    args = parser.parse_args()
    work = args.work.resolve()
    steps = {"data": lambda: peer.phase_data(work), "setup": lambda: peer.phase_setup(work),
             "train": lambda: peer.phase_train(work, args.epochs), "export": lambda: phase_export(work, args.epochs),
             "decode": lambda: phase_decode(work, args.epochs, args.repeats),
             "report": lambda: print(phase_report(work, args.epochs))}
    for name in phases:  # in pipeline order, whatever order --phases lists them in
        if name in args.phases:
            steps[name]()

if __name__ == "__main__":
    main()
