"""decode: translate data/clean/test.tsv with data/model into data/decode/hypotheses.txt."""
import dataclasses
import json

from seq2seq.atomic import atomic_dir
from seq2seq.clean import read_split
from seq2seq.guard import run_guarded
from seq2seq.config import load_params
from seq2seq.translator import SearchSettings, Translator


def main() -> None:
    params = load_params()
    cfg = params.decode
    settings = SearchSettings(beam=cfg.beam_width, length_penalty=cfg.length_penalty,
                              max_length_ratio=cfg.max_length_ratio, max_length_extra=cfg.max_length_extra,
                              batch_size=cfg.batch_size)
    translator = Translator.load("data/model", device=cfg.device, **dataclasses.asdict(settings))
    test = read_split("data/clean/test.tsv")
    hypotheses = translator.translate(list(test["source"]))
    with atomic_dir("data/decode") as out:
        (out / "hypotheses.txt").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
        (out / "settings.json").write_text(
            json.dumps(dataclasses.asdict(cfg), indent=2) + "\n",
            encoding="utf-8")
    print(f"decode: {len(hypotheses):,} sentences, beam {cfg.beam_width}")


if __name__ == "__main__":
    run_guarded(main, "decode")
