"""testset NAME: fetch and normalise test set tests.NAME into data/tests/NAME/ (pairs.tsv,
provenance.json); its size and overlap with the training split go to metrics/tests/NAME.json."""
import sys

from seq2seq.core.atomic import write_json
from seq2seq.core.guard import run_guarded
from seq2seq.data.testsets import prepare_test_set, test_set_from_args
from seq2seq.params.config import load_params
from seq2seq.params.pipeline_inputs import check_declared


def main() -> None:
    params = load_params()
    name, test_set = test_set_from_args(params, sys.argv[1:], "testset")
    check_declared(params, "testset", name)  # dvc.yaml lists the local files it reads, so DVC sees them change
    report = prepare_test_set(name, test_set, "data/clean", f"data/tests/{name}",
                              params.data.max_download_mb * 1024 * 1024)
    write_json(f"metrics/tests/{name}.json", report.as_dict())
    print(f"testset {name}: {report.pairs:,} pairs; {report.sources_in_train:,} of their sources also in train")


if __name__ == "__main__":
    run_guarded(main, "testset")
