"""ensemble NAME: test set NAME translated by all the pipeline's models together, and every model's
score side by side (the stage exists where train.more_seeds lists seeds).

The ensemble is the first model (data/model, train.seed) and one per train.more_seeds
(data/seeds/N/model), each step scoring a token by the mean of their log-probabilities
(:mod:`seq2seq.search.ensemble`), searched as decode.* says. Writes data/ensemble/NAME/ (as the decode
stage writes data/decode/NAME/) and metrics/ensemble/NAME.json: the ensemble's BLEU, chrF and TER
with its members and their training minutes in all; the ensembles of its first 2, 3, ... models
(what fewer training minutes buy; their translations in data/ensemble/NAME/first_K.txt); and each
single model's BLEU, chrF and training minutes by seed with their mean and standard deviation (from
metrics/scores/NAME.json, metrics/seeds/N/scores.json and each model's training history). The
evaluation is recorded in MLflow as a child of the first model's training run, naming its members.
"""
import dataclasses
import sys
from pathlib import Path

from seq2seq.bundle.files import load_bundle_info
from seq2seq.core.atomic import write_json
from seq2seq.core.errors import Seq2SeqError
from seq2seq.core.guard import run_guarded
from seq2seq.core.stage_outputs import read_output_json
from seq2seq.data.clean import read_split
from seq2seq.data.testsets import PAIRS, test_set_from_args
from seq2seq.decoding.load import load_translator
from seq2seq.decoding.outputs import decode_test_set, search_label
from seq2seq.params.config import flatten, load_params
from seq2seq.params.seeds import all_models
from seq2seq.reporting.scoring import score_corpus, spread
from seq2seq.tracking.evaluations import EvaluationLog, test_set_evaluation


def main() -> None:
    params = load_params()
    name, _ = test_set_from_args(params, sys.argv[1:], "ensemble")
    models = all_models(params)
    if len(models) < 2:
        raise Seq2SeqError("train.more_seeds is empty: no ensemble to decode; run python tools/stage_deps.py "
                           "(it drops the ensemble stages), then dvc repro")
    cfg = params.decode
    search = dataclasses.asdict(cfg.search)
    pairs_path = Path(f"data/tests/{name}/{PAIRS}")
    test = read_split(pairs_path)
    minutes = {m.seed: m.training_minutes() for m in models}
    smaller, more_files = [], {}
    for k in range(2, len(models)):  # the first k models: an ensemble of fewer training minutes
        first = models[:k]
        found = load_translator([m.bundle for m in first], device=cfg.device, quantize=cfg.quantize,
                                **search).translate(list(test["source"]))
        more_files[f"first_{k}.txt"] = "".join(text + "\n" for text in found)
        smaller.append({"seeds": [m.seed for m in first], **score_corpus(found, list(test["target"]), params.score),
                        "training_minutes": round(sum(minutes[m.seed] for m in first), 1)})
    translator = load_translator([m.bundle for m in models], device=cfg.device, quantize=cfg.quantize, **search)
    out = Path("data/ensemble") / name
    hypotheses = decode_test_set(translator, name, test["source"], out, flatten(cfg), cfg.search.nbest,
                                 cfg.attention_examples, more_files)
    scores = score_corpus(hypotheses, list(test["target"]), params.score)
    infos = [load_bundle_info(m.bundle) for m in models]
    runs = [info.get("mlflow", {}).get("run_id") or "" for info in infos]
    members = [f"seed {m.seed}" + (f": run {run}" if run else "") for m, run in zip(models, runs)]
    single = {models[0].seed: read_output_json(f"metrics/scores/{name}.json")}
    single |= {m.seed: read_output_json(m.scores)["tests"][name] for m in models[1:]}
    record = {"test_set": name,
              "ensemble": {**scores, "members": members, "training_minutes": round(sum(minutes.values()), 1)},
              "smaller_ensembles": smaller,
              "single_models": {"seeds": {str(seed): {"bleu": s["bleu"], "chrf": s["chrf"],
                                                      "training_minutes": round(minutes[seed], 1)}
                                          for seed, s in single.items()},
                                **{k: spread([s[k] for s in single.values()]) for k in ("bleu", "chrf")},
                                "training_minutes": spread(list(minutes.values()))},
              "decode": flatten(cfg)}
    write_json(f"metrics/ensemble/{name}.json", record)
    EvaluationLog(runs[0] or None).record(test_set_evaluation(
        name, pairs_path, test, flatten(cfg), flatten(params.score), scores, infos[0]["model"],
        artifacts=[out / "hypotheses.txt"], attention=sorted((out / "attention").glob("*.png")), members=members))
    bleu = record["single_models"]["bleu"]
    print(f"ensemble {name}: {len(models)} models, {search_label(cfg.search)}: BLEU {scores['bleu']:.2f}  "
          f"chrF {scores['chrf']:.2f}; single models BLEU {bleu['mean']:.2f} ± {bleu['sd']:.2f}"
          + "".join(f"; first {len(e['seeds'])}: BLEU {e['bleu']:.2f}" for e in smaller))


if __name__ == "__main__":
    run_guarded(main, "ensemble")
