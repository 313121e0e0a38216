"""Side by side with Joey NMT 2.3.0 on Multi30k en->de: training speed, memory, BLEU, decoding speed.

    python bench/joeynmt_compare.py [--epochs 3] [--repeats 3] [--work bench/work] [--phases ...]

Both tools get the configuration of ../shared/peers/joeynmt/m30k_en_de_rnn.yaml: SentencePiece
unigram 8,000 per side, a bidirectional LSTM encoder of 256 per direction, an LSTM decoder of
256 with Bahdanau attention and input feeding, embeddings 256, dropout 0.2, Adam at a
constant 1e-3, batches of about 2,000 target tokens, seed 42, CPU. Joey runs in its own
virtual environment (WORK/joey-venv, made here with the fixes its peer notes list).

Phases (each skips work whose results are already in WORK, so a rerun only redoes what is
missing; delete a file under WORK to redo its phase):
  data    unpack Multi30k (train, val, test_2016_flickr) into WORK/data
  setup   Joey's venv and SentencePiece models
  train   Joey, then this project, the same number of epochs; tokens/s, peak RSS, valid BLEU; the
          model's FLOP per target token (torch.utils.flop_counter) and this CPU's matrix-product
          peak (2048x2048, fp32 and bf16), for achieved GFLOP/s against the roof
  speed   training speed alone, the two tools alternating ``--repeats`` times: one epoch on
          SPEED_PAIRS training pairs sampled with seed 42 (Joey's ``sample_train_subset``), the
          median tokens/s of each and their ratio, measured in the same run
  decode  test_2016_flickr greedy and beam 5 with both models, the two tools alternating,
          ``--repeats`` times each; decode-only and whole-process sentences/s (medians); BLEU/chrF
  report  WORK/results.json and a Markdown table on stdout

Ratios are this project over Joey NMT, measured in the same invocation on the same machine.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MULTI30K = SHARED / "data" / "multi30k"
PEER = SHARED / "peers" / "joeynmt"
SPLITS = ("train", "val", "test_2016_flickr")
BEAMS = (1, 5)
SPEED_PAIRS = 5000


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd: list[str], time_file: Path, **kw) -> float:
    """Run under /usr/bin/time -v; return wall seconds."""
    start = time.perf_counter()
    sh(["/usr/bin/time", "-v", "-o", str(time_file), *cmd], **kw)
    return time.perf_counter() - start


def peak_rss_gib(time_file: Path) -> float:
    kib = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_file.read_text())
    return int(kib.group(1)) / 2**20 if kib else float("nan")


def phase_data(work: Path) -> None:
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        for lang in ("en", "de"):
            out = data / f"{split}.{lang}"
            if not out.exists():
                with gzip.open(MULTI30K / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                    out.write_text(f.read(), encoding="utf-8")


def joey_python(work: Path) -> Path:
    return work / "joey-venv" / "bin" / "python"


def phase_setup(work: Path) -> None:
    venv = work / "joey-venv"
    if not (venv / ".installed").exists():
        sh([sys.executable, "-m", "venv", "--clear", str(venv)])
        sh([str(joey_python(work)), "-m", "pip", "install", "-q", "torch==2.13.0", "joeynmt==2.3.0",
            "importlib-metadata", "sentencepiece==0.2.0"])
        (venv / ".installed").write_text("ok\n")
    joey = work / "joey"
    (joey / "spm").mkdir(parents=True, exist_ok=True)
    if not (joey / "spm" / "spm.de.model").exists():
        for split in SPLITS:
            for lang in ("en", "de"):
                target = joey / "data" / f"{split}.{lang}"
                target.parent.mkdir(exist_ok=True)
                if not target.exists():
                    shutil.copy(work / "data" / f"{split}.{lang}", target)
        sh([str(joey_python(work)), str(PEER / "train_spm.py")], cwd=joey)
    venv_dir = str(venv)
    for name in ("m30k_en_de_rnn.yaml", "decode_beam1.yaml", "decode_beam5.yaml"):
        text = (PEER / name).read_text().replace("JOEY_WORK", str(joey)).replace("JOEY_VENV", venv_dir)
        (joey / name).write_text(text)


def joey_epochs(config: Path, epochs: int) -> Path:
    text = re.sub(r"(?m)^(\s*epochs:\s*)\d+", rf"\g<1>{epochs}", config.read_text())
    out = config.with_name(f"m30k_en_de_rnn.e{epochs}.yaml")
    out.write_text(text.replace("models/m30k_en_de_rnn", f"models/m30k_en_de_rnn_e{epochs}"))
    return out


def parse_joey_training(log: str) -> dict:
    """Joey's per-epoch lines: tokens, cumulative training seconds (which include the driver's
    end-of-epoch validations, subtracted here) and the greedy valid BLEU after each epoch."""
    epochs = re.findall(r"Epoch\s+(\d+), total training loss: [\d.]+, num\. of seqs: \d+, "
                        r"num\. of tokens: (\d+), ([\d.]+)\[sec\]", log)
    validation = [float(x) for x in re.findall(r"END-OF-EPOCH \d+ validation took ([\d.]+)\[sec\]", log)]
    bleus = [float(x) for x in re.findall(r"Evaluation result \(greedy\): bleu:\s*([\d.]+)", log)]
    tokens = sum(int(t) for _, t, _ in epochs)
    seconds = (float(epochs[-1][2]) if epochs else 0.0) - sum(validation)
    return {"target_tokens": tokens, "train_seconds": seconds, "valid_bleu": bleus,
            "validation_seconds": validation, "epochs": len(epochs)}


def phase_train(work: Path, epochs: int) -> None:
    results = work / "results"
    results.mkdir(exist_ok=True)
    joey = work / "joey"
    joey_out = results / f"joey_train_e{epochs}.json"
    if not joey_out.exists():
        config = joey_epochs(joey / "m30k_en_de_rnn.yaml", epochs)
        model_dir = joey / "models" / f"m30k_en_de_rnn_e{epochs}"
        shutil.rmtree(model_dir, ignore_errors=True)
        log = results / f"joey_train_e{epochs}.log"
        with open(log, "w") as f:
            wall = timed([str(joey_python(work)), str(PEER / "run_joey_train.py"), str(config)],
                         results / f"joey_train_e{epochs}.time", cwd=joey, stdout=f, stderr=subprocess.STDOUT)
        parsed = parse_joey_training(log.read_text())
        params = re.findall(r"Total params: ([\d,]+)", log.read_text())
        joey_out.write_text(json.dumps(parsed | {
            "wall_seconds": wall, "tokens_per_second": parsed["target_tokens"] / parsed["train_seconds"],
            "peak_rss_gib": peak_rss_gib(results / f"joey_train_e{epochs}.time"),
            "parameters": params[-1] if params else "n/a", "model_dir": str(model_dir),
        }, indent=2))
    ours_out = results / f"ours_train_e{epochs}.json"
    if not ours_out.exists():
        bundle = work / "ours" / f"model_e{epochs}"
        timed([sys.executable, str(ROOT / "bench" / "ours_multi30k.py"), "train", str(work), str(epochs),
               str(bundle), str(ours_out)], results / f"ours_train_e{epochs}.time", cwd=ROOT)
        record = json.loads(ours_out.read_text())
        record["peak_rss_gib"] = peak_rss_gib(results / f"ours_train_e{epochs}.time")
        ours_out.write_text(json.dumps(record, indent=2))
    flops_out = results / "flops.json"
    if not flops_out.exists():
        sh([sys.executable, str(ROOT / "bench" / "ours_multi30k.py"), "flops", str(work), str(flops_out)], cwd=ROOT)
    peak_out = results / "matmul_peak.json"
    if not peak_out.exists():
        sh([sys.executable, str(ROOT / "bench" / "ours_multi30k.py"), "peak", str(peak_out)], cwd=ROOT)


def joey_speed(work: Path, out: Path) -> float:
    """Joey's training tokens/s over one epoch of SPEED_PAIRS sampled pairs (validation on 100
    valid pairs, its time subtracted)."""
    joey = work / "joey"
    text = (joey / "m30k_en_de_rnn.yaml").read_text()
    text = re.sub(r"(?m)^(\s*epochs:\s*)\d+", r"\g<1>1", text)
    text = re.sub(r"(?m)^(\s*sample_train_subset:\s*)-?\d+", rf"\g<1>{SPEED_PAIRS}", text)
    text = re.sub(r"(?m)^(\s*sample_dev_subset:\s*)-?\d+", r"\g<1>100", text)
    config = joey / "m30k_en_de_rnn.speed.yaml"
    config.write_text(text.replace("models/m30k_en_de_rnn", "models/m30k_en_de_rnn_speed"))
    shutil.rmtree(joey / "models" / "m30k_en_de_rnn_speed", ignore_errors=True)
    with open(out, "w") as f:
        sh([str(joey_python(work)), str(PEER / "run_joey_train.py"), str(config)], cwd=joey, stdout=f,
           stderr=subprocess.STDOUT)
    parsed = parse_joey_training(out.read_text())
    return parsed["target_tokens"] / parsed["train_seconds"]


def ours_speed(work: Path, out: Path) -> float:
    sh([sys.executable, str(ROOT / "bench" / "ours_multi30k.py"), "speed", str(work), str(SPEED_PAIRS), str(out)],
       cwd=ROOT)
    return json.loads(out.read_text())["tokens_per_second"]


def phase_speed(work: Path, repeats: int) -> None:
    results = work / "results"
    results.mkdir(exist_ok=True)
    out_file = results / "train_speed.json"
    if out_file.exists():
        return
    runs: dict[str, list[float]] = {"joey": [], "ours": []}
    for _ in range(repeats):
        runs["joey"].append(joey_speed(work, results / "joey_speed.log"))
        runs["ours"].append(ours_speed(work, results / "ours_speed.json"))
    out_file.write_text(json.dumps({"pairs": SPEED_PAIRS, "runs": runs} | {
        f"{tool}_tokens_per_second": statistics.median(values) for tool, values in runs.items()}, indent=2))


def joey_decode(work: Path, epochs: int, beam: int, out: Path) -> dict:
    joey = work / "joey"
    config = joey / f"decode_beam{beam}.e{epochs}.yaml"
    text = (joey / f"decode_beam{beam}.yaml").read_text()
    config.write_text(text.replace("models/m30k_en_de_rnn", f"models/m30k_en_de_rnn_e{epochs}"))
    log = out.with_suffix(".log")
    with open(work / "data" / "test_2016_flickr.en") as src, open(out, "w") as hyp, open(log, "w") as err:
        wall = timed([str(joey_python(work)), "-m", "joeynmt", "translate", str(config)], out.with_suffix(".time"),
                     cwd=joey, stdin=src, stdout=hyp, stderr=err)
    took = re.findall(r"Generation took ([\d.]+)\[sec\]", log.read_text())
    return {"wall_seconds": wall, "decode_seconds": float(took[-1]) if took else None}


def ours_decode(work: Path, epochs: int, beam: int, out: Path, quantize: str = "none") -> dict:
    bundle = work / "ours" / f"model_e{epochs}"
    record = out.with_suffix(".json")
    wall = timed([sys.executable, str(ROOT / "bench" / "ours_multi30k.py"), "decode", str(work), str(bundle),
                  str(beam), str(out), str(record), quantize], out.with_suffix(".time"), cwd=ROOT)
    return {"wall_seconds": wall, "decode_seconds": json.loads(record.read_text())["decode_seconds"]}


def ours_int8_decode(work: Path, epochs: int, beam: int, out: Path) -> dict:
    return ours_decode(work, epochs, beam, out, "int8")


def bleu_chrf(hyp: Path, ref: Path) -> tuple[float, float]:
    import sacrebleu

    hyps = hyp.read_text(encoding="utf-8").splitlines()
    refs = ref.read_text(encoding="utf-8").splitlines()
    return (round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2), round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2))


def phase_decode(work: Path, epochs: int, repeats: int) -> None:
    results = work / "results"
    out_file = results / f"decode_e{epochs}.json"
    if out_file.exists():
        return
    sentences = len((work / "data" / "test_2016_flickr.en").read_text().splitlines())
    runs: dict[str, list[dict]] = {}
    for repeat in range(repeats):
        for beam in BEAMS:
            for tool, fn in (("joey", joey_decode), ("ours", ours_decode), ("oursint8", ours_int8_decode)):
                hyp = results / f"{tool}_beam{beam}_e{epochs}.hyp"
                runs.setdefault(f"{tool}_beam{beam}", []).append(fn(work, epochs, beam, hyp))
    summary = {}
    ref = work / "data" / "test_2016_flickr.de"
    for key, rs in runs.items():
        tool, beam = key.split("_beam")
        bleu, chrf = bleu_chrf(results / f"{tool}_beam{beam}_e{epochs}.hyp", ref)
        summary[key] = {
            "decode_sentences_per_second": sentences / statistics.median(r["decode_seconds"] for r in rs),
            "process_sentences_per_second": sentences / statistics.median(r["wall_seconds"] for r in rs),
            "bleu": bleu, "chrf": chrf, "runs": rs,
        }
    out_file.write_text(json.dumps(summary, indent=2))


def published_joey_training_speed() -> float | None:
    """The peer's own training tokens/s on this kind of machine (its README's table), if readable."""
    try:
        text = (PEER / "README.md").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"training, target tokens/s[^|]*\|\s*([\d,]+)", text)
    return float(found.group(1).replace(",", "")) if found else None


def flop_rows(results: Path, joey_speed: float, ours_speed: float) -> list[str]:
    """Achieved training GFLOP/s (FLOP per target token x tokens/s) against the measured fp32 roof.

    The FLOP count is this project's model (Joey's differs only in a smaller bridge), so both
    tools are scored by the same work per token."""
    try:
        per_token = json.loads((results / "flops.json").read_text())["flop_per_target_token"]
        peak = json.loads((results / "matmul_peak.json").read_text())
    except (OSError, KeyError, ValueError):
        return []
    fp32 = peak["fp32_gflops"]
    joey_g, ours_g = per_token * joey_speed / 1e9, per_token * ours_speed / 1e9
    return [
        f"| training work, MFLOP per target token (forward + backward) | {per_token / 1e6:.1f} | "
        f"{per_token / 1e6:.1f} | |",
        f"| training, GFLOP/s achieved (% of this CPU's fp32 matrix-product peak, {fp32:.0f} GFLOP/s; "
        f"bf16 {peak['bf16_gflops']:.1f}) | {joey_g:.0f} ({joey_g / fp32:.0%}) | {ours_g:.0f} ({ours_g / fp32:.0%}) | |",
        f"| training, target tokens/s at 100% of the fp32 peak | {fp32 * 1e9 / per_token:,.0f} | "
        f"{fp32 * 1e9 / per_token:,.0f} | |",
    ]


def phase_report(work: Path, epochs: int) -> str:
    """The table of whatever the train, speed and decode phases have left in WORK/results; the rows
    of a phase that has not run are left out, and the table says which."""
    results = work / "results"

    def found(name: str) -> dict | None:
        path = results / name
        return json.loads(path.read_text()) if path.exists() else None

    joey_t, ours_t = found(f"joey_train_e{epochs}.json"), found(f"ours_train_e{epochs}.json")
    trained = joey_t is not None and ours_t is not None
    speed, dec = found("train_speed.json"), found(f"decode_e{epochs}.json")
    if not (trained or speed or dec):
        sys.exit(f"error: {results}: no results of the train, speed or decode phase ({epochs} epochs); run one first")

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a and b else "n/a"

    lines = [f"| Multi30k en→de, {epochs} epochs, 2-core CPU | Joey NMT 2.3.0 | seq2seq | ratio |", "|---|---|---|---|"]
    if trained:
        lines += [
            f"| parameters | {joey_t.get('parameters', 'n/a')} | {ours_t['parameters']:,} | |",
            f"| training, target tokens/s, the {epochs}-epoch runs (one after the other) | "
            f"{joey_t['tokens_per_second']:,.0f} | {ours_t['tokens_per_second']:,.0f} | "
            f"{ratio(ours_t['tokens_per_second'], joey_t['tokens_per_second'])} |",
            f"| training peak RSS, GiB | {joey_t['peak_rss_gib']:.2f} | {ours_t['peak_rss_gib']:.2f} | |",
            f"| valid BLEU (greedy) after each epoch | {' / '.join(f'{b:.2f}' for b in joey_t['valid_bleu'])} | "
            f"{' / '.join(f'{b:.2f}' for b in ours_t['valid_bleu'])} | |",
        ]
    if speed:
        joey_s, ours_s = speed["joey_tokens_per_second"], speed["ours_tokens_per_second"]
        lines.append(f"| training, target tokens/s, tools alternating ({len(speed['runs']['ours'])} runs each of "
                     f"1 epoch on {speed['pairs']:,} sampled pairs, medians) | {joey_s:,.0f} | {ours_s:,.0f} | "
                     f"{ratio(ours_s, joey_s)} |")
        lines += flop_rows(results, joey_s, ours_s)
    elif trained:
        lines += flop_rows(results, joey_t["tokens_per_second"], ours_t["tokens_per_second"])
    for beam in BEAMS if dec else ():
        j = dec[f"joey_beam{beam}"]
        name = "greedy" if beam == 1 else f"beam {beam}"
        for tool, label in (("ours", ""), ("oursint8", ", seq2seq `quantize: int8`")):
            o = dec[f"{tool}_beam{beam}"]
            lines += [
                f"| test BLEU / chrF, {name}{label} | {j['bleu']} / {j['chrf']} | {o['bleu']} / {o['chrf']} | |",
                f"| decoding {name}{label}, sentences/s, decode only | {j['decode_sentences_per_second']:.1f} | "
                f"{o['decode_sentences_per_second']:.1f} | "
                f"{ratio(o['decode_sentences_per_second'], j['decode_sentences_per_second'])} |",
                f"| decoding {name}{label}, sentences/s, whole process | {j['process_sentences_per_second']:.1f} | "
                f"{o['process_sentences_per_second']:.1f} | "
                f"{ratio(o['process_sentences_per_second'], j['process_sentences_per_second'])} |",
            ]
    missing = [phase for phase, there in (("train", trained), ("speed", speed), ("decode", dec)) if not there]
    if missing:
        lines += ["", f"Not in this table (their phases have not run in {work}): {', '.join(missing)}."]
    published = published_joey_training_speed()
    if trained and published and joey_t["tokens_per_second"] < 0.8 * published:
        lines += ["", f"Warning: Joey NMT trained at {joey_t['tokens_per_second']:,.0f} tokens/s here, well below the "
                      f"{published:,.0f} published in {PEER / 'README.md'} for this kind of machine: the CPU was "
                      "probably shared during its training, so its training ratio is not a fair one. Rerun the "
                      "train phase on a quiet machine (delete WORK/results/joey_train_*)."]
    table = "\n".join(lines)
    (results / f"report_e{epochs}.md").write_text(table + "\n")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    phases = ["data", "setup", "train", "speed", "decode", "report"]
    parser.add_argument("--phases", nargs="+", default=phases, choices=phases)
    args = parser.parse_args()
    if not MULTI30K.is_dir():
        sys.exit(f"error: {MULTI30K} not found: this benchmark needs ../shared/data/multi30k beside the checkout")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if "data" in args.phases:
        phase_data(work)
    if "setup" in args.phases:
        phase_setup(work)
    if "train" in args.phases:
        phase_train(work, args.epochs)
    if "speed" in args.phases:
        phase_speed(work, args.repeats)
    if "decode" in args.phases:
        phase_decode(work, args.epochs, args.repeats)
    if "report" in args.phases:
        print(phase_report(work, args.epochs))


if __name__ == "__main__":
    main()
