"""download: fetch the corpus named by data.* into data/raw/ (corpus.tsv + provenance.json)."""
from seq2seq.core.guard import run_guarded
from seq2seq.data.download import fetch_corpus
from seq2seq.params.config import load_params
from seq2seq.params.pipeline_inputs import check_declared


def main() -> None:
    params = load_params()
    check_declared(params, "download")  # dvc.yaml lists the local files it reads, so DVC sees them change
    provenance = fetch_corpus(params.data, "data/raw")
    print(f"download: {provenance.lines:,} lines from {provenance.origin} (sha256 {provenance.sha256[:12]}…; "
          f"served from {provenance.served_from})")


if __name__ == "__main__":
    run_guarded(main, "download")
