"""decode: translate data/clean/test.tsv with data/model into data/decode/.

Writes hypotheses.txt (the best translation of each test sentence, one per line),
settings.json (the decode params used) and, when decode.nbest > 1, nbest.tsv
(line, rank, score, log_prob, translation; line counts test sentences from 1).
"""
import dataclasses
import json

from seq2seq.atomic import atomic_dir
from seq2seq.clean import read_split
from seq2seq.config import load_params
from seq2seq.guard import run_guarded
from seq2seq.translator import SearchSettings, Translator, nbest_table


def main() -> None:
    cfg = load_params().decode
    settings = SearchSettings.from_config(cfg)
    translator = Translator.load("data/model", device=cfg.device, **dataclasses.asdict(settings))
    test = read_split("data/clean/test.tsv")
    results = translator.translate_details(list(test["source"]))
    with atomic_dir("data/decode") as out:
        (out / "hypotheses.txt").write_text("".join(hyps[0].text + "\n" for hyps in results), encoding="utf-8")
        if cfg.nbest > 1:
            (out / "nbest.tsv").write_text(nbest_table(results), encoding="utf-8")
        (out / "settings.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n", encoding="utf-8")
    how = (f"sampling (temperature {cfg.temperature}, top-k {cfg.top_k}, top-p {cfg.top_p}, seed {cfg.seed})"
           if cfg.sampling else f"beam {cfg.beam_width}")
    print(f"decode: {len(results):,} sentences, {how}" + (f", {cfg.nbest}-best" if cfg.nbest > 1 else ""))


if __name__ == "__main__":
    run_guarded(main, "decode")
