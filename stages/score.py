"""score: sacreBLEU BLEU/chrF/TER of data/decode/hypotheses.txt into metrics/scores.json and the MLflow run."""
import json
from pathlib import Path

from seq2seq.atomic import write_json
from seq2seq.bundle import load_bundle_info
from seq2seq.clean import read_split
from seq2seq.guard import run_guarded
from seq2seq.config import load_params
from seq2seq.scoring import score_corpus
from seq2seq.tracking import log_metrics_safely


def main() -> None:
    params = load_params()
    hypotheses = Path("data/decode/hypotheses.txt").read_text(encoding="utf-8").split("\n")[:-1]
    settings = json.loads(Path("data/decode/settings.json").read_text(encoding="utf-8"))
    references = list(read_split("data/clean/test.tsv")["target"])
    scores = score_corpus(hypotheses, references, params.score)
    write_json("metrics/scores.json", {**scores, "decode": settings})
    run_id = load_bundle_info("data/model").get("mlflow", {}).get("run_id")
    log_metrics_safely(
        run_id,
        {f"test_{k}": scores[k] for k in ("bleu", "chrf", "ter")},
        tags={**{f"decode.{k}": v for k, v in settings.items()},
              **{f"signature.{k}": v for k, v in scores["signatures"].items()}},
        artifacts=[Path("data/decode/hypotheses.txt"), Path("metrics/scores.json")],
    )
    print(f"score: BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  TER {scores['ter']:.2f}")


if __name__ == "__main__":
    run_guarded(main, "score")
