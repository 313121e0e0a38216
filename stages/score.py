"""score NAME: sacreBLEU BLEU/chrF/TER of test set NAME's hypotheses (data/decode/NAME/), overall,
with every reference of a repeated source, and by source length.

Writes metrics/scores/NAME.json (with the signatures and the decode settings) and
metrics/scores_by_length/NAME.csv (a DVC plot), the same and a chart in data/score/NAME/, and
records the evaluation in MLflow as a run of its own, a child of the run that made the model
(seq2seq.tracking.evaluations): the model's config, the decode and score settings as params, the test set as its
dataset, BLEU / chrF / TER as metrics, the hypotheses, a table of sample translations, the
by-length chart and the decode stage's attention heatmaps as artifacts.
"""
import csv
import io
import sys
from pathlib import Path

from seq2seq.bundle.files import load_bundle_info
from seq2seq.core.atomic import write_json, write_text
from seq2seq.core.guard import run_guarded
from seq2seq.core.stage_outputs import read_output_json, read_output_lines
from seq2seq.data.clean import read_split
from seq2seq.data.testsets import PAIRS, test_set_from_args
from seq2seq.params.config import flatten, load_params
from seq2seq.reporting.figures import scores_by_length_chart
from seq2seq.reporting.scoring import multi_reference_scores, score_corpus, scores_by_length
from seq2seq.tracking.evaluations import EvaluationLog, test_set_evaluation


def main() -> None:
    params = load_params()
    name, _ = test_set_from_args(params, sys.argv[1:], "score")
    bundle = load_bundle_info("data/model")  # the model's config and the MLflow run that made it
    cfg = params.score
    decoded = Path("data/decode") / name
    hypotheses = read_output_lines(decoded / "hypotheses.txt")
    settings = read_output_json(decoded / "settings.json")
    test = read_split(f"data/tests/{name}/{PAIRS}")
    sources, references = list(test["source"]), list(test["target"])
    scores = score_corpus(hypotheses, references, cfg)
    multi = multi_reference_scores(sources, hypotheses, references, cfg)
    by_length = scores_by_length(sources, hypotheses, references, cfg.length_bucket_width, cfg.length_bucket_last)
    record = {"test_set": name, **scores, **({"multi_reference": multi} if multi else {}), "decode": settings}
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(by_length[0]))
    writer.writeheader()
    writer.writerows(by_length)
    # DVC's metrics and plots (one file per test set), and the same under data/score/NAME/ for MLflow
    write_json(f"metrics/scores/{name}.json", record)
    write_text(f"metrics/scores_by_length/{name}.csv", table.getvalue())
    scored = Path("data/score") / name
    write_json(scored / "scores.json", record)
    write_text(scored / "scores_by_length.csv", table.getvalue())
    scores_by_length_chart(scored / "scores_by_length.png", by_length, title=f"{name}, {len(hypotheses):,} sentences")

    n = min(cfg.samples, len(hypotheses))
    evaluation = test_set_evaluation(
        name, Path(f"data/tests/{name}/{PAIRS}"), test, settings, flatten(cfg), scores, bundle["model"],
        metrics={"bleu_multi_ref": multi["bleu"], "chrf_multi_ref": multi["chrf"]} if multi else {},
        artifacts=[decoded / "hypotheses.txt", *(scored / f for f in ("scores.json", "scores_by_length.csv",
                                                                      "scores_by_length.png"))],
        attention=sorted((decoded / "attention").glob("*.png")),
        samples={"source": sources[:n], "reference": references[:n], "translation": hypotheses[:n]})
    run_id = EvaluationLog(bundle.get("mlflow", {}).get("run_id")).record(evaluation)
    extra = f"  (all references: BLEU {multi['bleu']:.2f}  chrF {multi['chrf']:.2f})" if multi else ""
    print(f"score {name}: BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  TER {scores['ter']:.2f}{extra}"
          + (f"; MLflow evaluation run {run_id} ({evaluation.name})" if run_id else ""))


if __name__ == "__main__":
    run_guarded(main, "score")
