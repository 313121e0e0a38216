"""score: sacreBLEU BLEU/chrF/TER of data/decode/hypotheses.txt, overall and by source length.

Writes metrics/scores.json (with the signatures and the decode settings),
metrics/scores_by_length.csv (a DVC plot) and logs all of it into the MLflow run
that made the model, with the hypotheses, a table of sample translations, the
by-length chart and the decode stage's attention heatmaps.
"""
import csv
import io
import json
from pathlib import Path

from seq2seq.atomic import write_json, write_text
from seq2seq.bundle import load_bundle_info
from seq2seq.clean import read_split
from seq2seq.config import load_params
from seq2seq.figures import scores_by_length_chart
from seq2seq.guard import run_guarded
from seq2seq.scoring import score_corpus, scores_by_length
from seq2seq.tracking import RunLog

BY_LENGTH_CSV = Path("metrics/scores_by_length.csv")
BY_LENGTH_PNG = Path("data/score/scores_by_length.png")


def main() -> None:
    params = load_params()
    cfg = params.score
    hypotheses = Path("data/decode/hypotheses.txt").read_text(encoding="utf-8").split("\n")[:-1]
    settings = json.loads(Path("data/decode/settings.json").read_text(encoding="utf-8"))
    test = read_split("data/clean/test.tsv")
    sources, references = list(test["source"]), list(test["target"])
    scores = score_corpus(hypotheses, references, cfg)
    by_length = scores_by_length(sources, hypotheses, references, cfg.length_bucket_width, cfg.length_bucket_last)
    write_json("metrics/scores.json", {**scores, "decode": settings})
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(by_length[0]))
    writer.writeheader()
    writer.writerows(by_length)
    write_text(BY_LENGTH_CSV, table.getvalue())
    scores_by_length_chart(BY_LENGTH_PNG, by_length, title=f"test set, {len(hypotheses):,} sentences")

    log = RunLog(load_bundle_info("data/model").get("mlflow", {}).get("run_id"))
    log.metrics({f"test_{k}": scores[k] for k in ("bleu", "chrf", "ter")})
    log.tags({**{f"decode.{k}": v for k, v in settings.items()},
              **{f"signature.{k}": v for k, v in scores["signatures"].items()}})
    log.artifacts([Path("data/decode/hypotheses.txt"), Path("metrics/scores.json"), BY_LENGTH_CSV, BY_LENGTH_PNG],
                  folder="test")
    log.artifacts(sorted(Path("data/decode/attention").glob("*.png")), folder="test/attention")
    n = min(cfg.samples, len(hypotheses))
    log.table({"source": sources[:n], "reference": references[:n], "translation": hypotheses[:n]},
              "test/samples.json")
    print(f"score: BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  TER {scores['ter']:.2f}")


if __name__ == "__main__":
    run_guarded(main, "score")
