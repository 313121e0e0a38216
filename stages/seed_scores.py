"""seed_scores N: every test set translated by the model of seed N alone (train.more_seeds) and scored.

Writes data/seeds/N/decode/NAME/ (as the decode stage writes data/decode/NAME/) and
metrics/seeds/N/scores.json (BLEU, chrF and TER of each test set, with sacreBLEU's signatures),
and records each evaluation in MLflow as a child of that model's training run. The first model's
scores are the score stage's; ensemble@NAME sets them all side by side (mean ± sd).
"""
import dataclasses
import sys
from pathlib import Path

from seq2seq.bundle.files import load_bundle_info
from seq2seq.core.atomic import write_json
from seq2seq.core.guard import run_guarded
from seq2seq.data.clean import read_split
from seq2seq.data.testsets import PAIRS
from seq2seq.decoding.outputs import decode_test_set, search_label
from seq2seq.decoding.translator import Translator
from seq2seq.params.config import flatten, load_params
from seq2seq.params.seeds import seed_from_args, seed_model
from seq2seq.reporting.scoring import score_corpus
from seq2seq.tracking.evaluations import EvaluationLog, test_set_evaluation


def main() -> None:
    params = load_params()
    model = seed_model(seed_from_args(params, sys.argv[1:], "seed_scores"))
    cfg = params.decode
    translator = Translator.load(model.bundle, device=cfg.device, quantize=cfg.quantize,
                                 **dataclasses.asdict(cfg.search))
    bundle = load_bundle_info(model.bundle)
    scores = {}
    for name in params.tests:
        pairs_path = Path(f"data/tests/{name}/{PAIRS}")
        test = read_split(pairs_path)
        hypotheses = decode_test_set(translator, name, test["source"], model.decoded / name, flatten(cfg),
                                     cfg.search.nbest, 0)
        scores[name] = score_corpus(hypotheses, list(test["target"]), params.score)
        EvaluationLog(bundle.get("mlflow", {}).get("run_id")).record(test_set_evaluation(
            name, pairs_path, test, flatten(cfg), flatten(params.score), scores[name], bundle["model"],
            artifacts=[model.decoded / name / "hypotheses.txt"]))
        print(f"seed_scores {model.seed} {name}: BLEU {scores[name]['bleu']:.2f}  chrF {scores[name]['chrf']:.2f}  "
              f"({search_label(cfg.search)})")
    write_json(model.scores, {"seed": model.seed, "decode": flatten(cfg), "tests": scores})


if __name__ == "__main__":
    run_guarded(main, "seed_scores")
