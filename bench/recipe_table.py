"""The README's Multi30k results table, from recipes that have been run (`make recipe NAME=...`).

    python bench/recipe_table.py recipes/multi30k-en-de-plain recipes/multi30k-en-de-gru-luong ...

For each recipe: its model, its training minutes (metrics/train_history.csv: validations included,
over every interruption), the pipeline's own scores of its first test set with its decode settings
(metrics/scores/NAME.json, beam 5 in the Multi30k recipes), and greedy scores of the same
model, decoded here (the pipeline decodes with one setting). A recipe with ``train.more_seeds`` adds
its single models' BLEU as mean ± sd over all its seeds, and the BLEU of the ensembles of its
first 2, 3, ... models (metrics/ensemble/NAME.json) with the training minutes of their members
together. Each recipe's
row is also written to RECIPE/results.json.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seq2seq.data.clean import read_split  # noqa: E402
from seq2seq.data.testsets import PAIRS  # noqa: E402
from seq2seq.decoding.translator import Translator  # noqa: E402
from seq2seq.params.config import load_params  # noqa: E402
from seq2seq.params.seeds import training_minutes  # noqa: E402
from seq2seq.reporting.scoring import score_corpus  # noqa: E402


def describe(params) -> str:
    m = params.model
    attention = {"none": "no attention", "luong": f"Luong ({m.luong_score})", "bahdanau": "Bahdanau"}[m.attention]
    parts = [m.cell.upper(), attention, f"{m.hidden_size} units"]
    if m.input_feeding:
        parts.append("input feeding")
    return ", ".join(parts)


def row(recipe: Path) -> dict:
    params = load_params(recipe / "params.yaml")
    name = next(iter(params.tests))
    train = json.loads((recipe / "metrics/train.json").read_text())
    scores = json.loads((recipe / f"metrics/scores/{name}.json").read_text())
    pairs = read_split(recipe / "data/tests" / name / PAIRS)
    settings = dataclasses.replace(params.decode.search, beam=1)
    translator = Translator.load(recipe / "data/model", device="cpu", **dataclasses.asdict(settings))
    started = time.perf_counter()
    greedy = score_corpus(translator.translate(list(pairs["source"])), list(pairs["target"]), params.score)
    result = {
        "recipe": recipe.name, "model": describe(params), "parameters": train["parameters"],
        "epochs": train["epochs"], "train_minutes": round(training_minutes(recipe / "metrics/train_history.csv"), 1),
        "precision": params.train.precision, "vocab_size": params.tokenize.vocab_size, "dropout": params.model.dropout,
        "word_dropout": params.train.word_dropout, "subword_sampling": params.train.subword_sampling,
        "label_smoothing": params.train.label_smoothing,
        "test_set": name, "beam": scores["decode"]["beam_width"], "bleu": scores["bleu"], "chrf": scores["chrf"],
        "greedy_bleu": greedy["bleu"], "greedy_chrf": greedy["chrf"],
        "greedy_decode_seconds": round(time.perf_counter() - started, 1),
        "best_valid_bleu_greedy": train["best_valid_bleu"],
    }
    ensemble = recipe / "metrics/ensemble" / f"{name}.json"
    if ensemble.is_file():
        record = json.loads(ensemble.read_text())
        seeds = record["single_models"]
        ensembles = [*record.get("smaller_ensembles", []),
                     {"seeds": [int(s) for s in seeds["seeds"]], **record["ensemble"]}]
        result |= {"seeds": {s: v["bleu"] for s, v in seeds["seeds"].items()}, "bleu_mean": seeds["bleu"]["mean"],
                   "bleu_sd": seeds["bleu"]["sd"],
                   "ensembles": [{"seeds": e["seeds"], "bleu": e["bleu"], "chrf": e["chrf"],
                                  "training_minutes": e["training_minutes"]} for e in ensembles]}
    (recipe / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(recipes: list[Path]) -> None:
    print("| recipe | model | parameters | training | epochs | training minutes | test BLEU / chrF, beam 5 | greedy "
          "| seeds: BLEU mean ± sd (n) | ensembles of the first k models: BLEU (their training minutes) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for recipe in recipes:
        r = row(recipe)
        training = f"{r['precision']}, dropout {r['dropout']}"
        for key in ("word_dropout", "subword_sampling", "label_smoothing"):  # regularizers, named when used
            if r.get(key):
                training += f", {key.replace('_', ' ')} {r[key]}"
        training += f", {r['vocab_size']:,} pieces per side"
        print(f"| `{r['recipe']}` | {r['model']} | {r['parameters'] / 1e6:.1f} M | {training} | {r['epochs']} "
              f"| {r['train_minutes']} "
              f"| {r['bleu']:.2f} / {r['chrf']:.2f} | {r['greedy_bleu']:.2f} / {r['greedy_chrf']:.2f} "
              + (f"| {r['bleu_mean']:.2f} ± {r['bleu_sd']:.2f} ({len(r['seeds'])}) | "
                 + "; ".join(f"{len(e['seeds'])}: {e['bleu']:.2f} ({e['training_minutes']})" for e in r["ensembles"])
                 + " |" if "seeds" in r else "| — | — |"), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python bench/recipe_table.py recipes/NAME [recipes/NAME ...]")
    main([Path(p) for p in sys.argv[1:]])
