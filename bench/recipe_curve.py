"""Test scores against training minutes, for a recipe trained with ``train.snapshots: true``.

    python bench/recipe_curve.py recipes/multi30k-en-de [--every N]

After `make recipe NAME=...`, decodes every test set of the recipe with the weights kept at
each validation (data/checkpoints/train/snapshots/ in the recipe's folder), with the recipe's
decode settings, and writes RECIPE/curve.csv and RECIPE/curve.png. Minutes are the train
stage's cumulative time at each validation (training and validation both counted). The
curve is for reading, never for choosing: the recipe keeps the weights its validation set
picks. ``--every N`` decodes every Nth snapshot (and the last) to save time on long runs.
Joey NMT 2.3.0's point at its reference configuration (../shared/peers/joeynmt) is drawn beside it.
"""
from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seq2seq.data.clean import read_split  # noqa: E402
from seq2seq.data.testsets import PAIRS  # noqa: E402
from seq2seq.decoding.translator import Translator  # noqa: E402
from seq2seq.params.config import load_params  # noqa: E402
from seq2seq.reporting.scoring import score_corpus  # noqa: E402
from seq2seq.training.checkpoint import list_snapshots  # noqa: E402

# ../shared/peers/joeynmt/README.md: 3 epochs of 337 s (training only), test_2016_flickr beam 5 BLEU 10.09
JOEY_POINT = (3 * 337 / 60, 10.09, "Joey NMT 2.3.0, reference config, 3 epochs (beam 5)")


def main(recipe: Path, every: int = 1) -> None:
    params = load_params(recipe / "params.yaml")
    snapshots = list_snapshots(recipe / "data/checkpoints/train")
    if not snapshots:
        sys.exit(f"error: {recipe}: no snapshots; train the recipe with train.snapshots: true first")
    snapshots = [s for i, s in enumerate(snapshots, 1) if i % every == 0 or i == len(snapshots)]
    settings = params.decode.search
    translator = Translator.load(recipe / "data/model", device="cpu", **dataclasses.asdict(settings))
    tests = {name: read_split(recipe / "data/tests" / name / PAIRS) for name in params.tests}
    rows = []
    for path in snapshots:
        snapshot = torch.load(path, map_location="cpu", weights_only=True)
        translator.bundle.model.load_state_dict(snapshot["model"])
        translator.bundle.model.eval()
        for name, pairs in tests.items():
            scores = score_corpus(translator.translate(list(pairs["source"])), list(pairs["target"]), params.score)
            rows.append({"test_set": name, "step": snapshot["step"], "epoch": snapshot["epoch"],
                         "minutes": round(snapshot["seconds"] / 60, 2), "bleu": scores["bleu"],
                         "chrf": scores["chrf"]})
            print(f"step {snapshot['step']} ({rows[-1]['minutes']} min): {name} BLEU {scores['bleu']:.2f}", flush=True)
    with open(recipe / "curve.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(recipe, rows, params.decode.search.beam)


def plot(recipe: Path, rows: list[dict], beam: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in dict.fromkeys(r["test_set"] for r in rows):
        mine = [r for r in rows if r["test_set"] == name]
        ax.plot([r["minutes"] for r in mine], [r["bleu"] for r in mine], marker="o", ms=3,
                label=f"seq2seq {recipe.name}, {name} (beam {beam})")
    ax.plot(JOEY_POINT[0], JOEY_POINT[1], marker="s", color="black", linestyle="none", label=JOEY_POINT[2])
    ax.set_xlabel("training minutes (2-core CPU, validation included)")
    ax.set_ylabel("test BLEU (sacreBLEU, cased, 13a)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(recipe / "curve.png", dpi=110)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Test scores against training minutes, from a recipe's snapshots.")
    parser.add_argument("recipe", type=Path, help="recipes/NAME, trained with train.snapshots: true")
    parser.add_argument("--every", type=int, default=1, help="decode every Nth snapshot (and the last)")
    args = parser.parse_args()
    if args.every < 1:
        parser.error("--every must be at least 1")
    main(args.recipe, args.every)
