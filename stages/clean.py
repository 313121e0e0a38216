"""clean: normalise, filter and split data/raw/corpus.tsv into data/clean/; report in metrics/clean.json.

With an official validation set (data/raw/valid.tsv, from data.valid) the corpus is all
training data and the official pairs are the valid split, normalised but never filtered.
"""

from seq2seq.core.atomic import write_json
from seq2seq.core.guard import run_guarded
from seq2seq.data.clean import clean_corpus
from seq2seq.params.config import load_params


def main() -> None:
    params = load_params()
    official_valid = "data/raw/valid.tsv" if params.data.valid.given else None
    report = clean_corpus("data/raw/corpus.tsv", "data/clean", params.clean, official_valid)
    write_json("metrics/clean.json", report.as_dict())
    print("clean: " + ", ".join(f"{k} {v:,}" for k, v in report.as_dict().items()))


if __name__ == "__main__":
    run_guarded(main, "clean")
