"""Memory and speed of bf16 training on a CPU with oneDNN's kernel caches bounded (seq2seq/fast/kernel_cache.py)
against oneDNN's default of 1,024 kernels each.

    python bench/kernel_cache.py RECIPE_DIR [--epochs 5] [--capacities 16 1024]

RECIPE_DIR is a recipe whose data stages have run (`cd recipes/multi30k-en-de && dvc repro tokenize`):
its params (bf16 in the Multi30k recipes) train for ``--epochs`` epochs (the learning-rate schedule
follows), one process per capacity, one after the other, nothing written but this script's output.
Each process reads its resident memory after every validation and its peak (VmHWM) at the
end. Prints a Markdown table: peak resident memory, memory after each epoch's validation, target
tokens/s over the run, valid BLEU after the last epoch, and whether the weights equal the first
capacity's (a hash of the state dict).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seq2seq.fast.kernel_cache import VARIABLES  # noqa: E402  (the training's own list: one place)


def memory_mb() -> tuple[int, int]:
    """(resident, peak resident) MiB of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def train_once(recipe: Path, epochs: int) -> dict:
    """Train the recipe's model in this process (the capacities come from the environment)."""
    import dataclasses

    import torch

    from seq2seq.data.clean import read_split
    from seq2seq.data.encoded import load_encoded
    from seq2seq.data.subwords import Tokenizer
    from seq2seq.params.config import load_params
    from seq2seq.training.trainer import train_model

    params = load_params(recipe / "params.yaml")
    config = dataclasses.replace(params.train, epochs=epochs, more_seeds=())
    tokens = recipe / "data" / "tokens"
    tgt_tok = Tokenizer.load(tokens / "tgt.spm.model")
    valid = read_split(recipe / "data" / "clean" / "valid.tsv")
    after_epoch: list[int] = []
    result = train_model(params.model, config, load_encoded(tokens / "train"), load_encoded(tokens / "valid"),
                         list(valid["target"]), Tokenizer.load(tokens / "src.spm.model").vocab_size, tgt_tok,
                         torch.device("cpu"), log=lambda line: None,
                         on_validation=lambda record: after_epoch.append(memory_mb()[0]))
    digest = hashlib.sha256()
    for name, tensor in result.model.state_dict().items():
        digest.update(name.encode() + tensor.float().numpy().tobytes())
    seconds = sum(r.seconds for r in result.history)
    return {"capacity": os.environ.get(VARIABLES[0], "unset"), "peak_mb": memory_mb()[1],
            "after_epoch_mb": after_epoch,
            "tokens_per_second": sum(r.tokens_per_second * r.seconds for r in result.history) / seconds,
            "valid_bleu": result.history[-1].valid_bleu, "weights_sha256": digest.hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--capacities", nargs="+", default=["16", "1024"])
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # one run, in its own process
    args = parser.parse_args()
    if args.once:
        print(json.dumps(train_once(args.recipe.resolve(), args.epochs)))
        return
    runs = []
    for capacity in args.capacities:
        env = dict(os.environ) | {name: capacity for name in VARIABLES}
        out = subprocess.run([sys.executable, __file__, str(args.recipe), "--epochs", str(args.epochs), "--once"],
                             env=env, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  capacity {capacity}: {runs[-1]}", flush=True)
    print(f"\n| kernels kept by each cache | peak memory | memory after each epoch | target tokens/s | "
          f"valid BLEU after {args.epochs} epochs | weights |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        same = "the same" if run["weights_sha256"] == runs[0]["weights_sha256"] else "differ"
        after = " / ".join(f"{mb / 1024:.2f}" for mb in run["after_epoch_mb"])
        print(f"| {run['capacity']} | {run['peak_mb'] / 1024:.2f} GiB | {after} GiB | "
              f"{run['tokens_per_second']:,.0f} | {run['valid_bleu']:.2f} | {same} |")


if __name__ == "__main__":
    main()
