"""decode NAME: translate test set NAME (data/tests/NAME/pairs.tsv) with data/model into data/decode/NAME/.

Writes hypotheses.txt (the best translation of each test sentence, one per line),
settings.json (the decode params used), when decode.nbest > 1 nbest.tsv (line, rank,
score, log_prob, translation; line counts test sentences from 1), and attention/NN.png,
attention heatmaps of the first decode.attention_examples test sentences (attention
models only).
"""
import dataclasses
import json
import sys

from seq2seq.core.atomic import atomic_dir
from seq2seq.core.guard import run_guarded
from seq2seq.data.clean import read_split
from seq2seq.data.testsets import PAIRS, test_set_from_args
from seq2seq.decoding.translator import Translator, nbest_table
from seq2seq.params.config import flatten, load_params
from seq2seq.reporting.figures import attention_heatmap


def main() -> None:
    params = load_params()
    name, _ = test_set_from_args(params, sys.argv[1:], "decode")
    cfg = params.decode
    search = cfg.search
    translator = Translator.load("data/model", device=cfg.device, quantize=cfg.quantize,
                                 **dataclasses.asdict(search))
    sources = list(read_split(f"data/tests/{name}/{PAIRS}")["source"])
    # The first sentences are searched with attention kept (for the heatmaps), the rest without.
    examples = translator.translate_details(sources[: cfg.attention_examples], attention=True)
    results = examples + translator.translate_details(sources[cfg.attention_examples:])
    with atomic_dir(f"data/decode/{name}") as out:
        (out / "hypotheses.txt").write_text("".join(hyps[0].text + "\n" for hyps in results), encoding="utf-8")
        if search.nbest > 1:
            (out / "nbest.tsv").write_text(nbest_table(results), encoding="utf-8")
        for n, hyps in enumerate(examples, start=1):
            best = hyps[0]
            if best.attention is not None:
                (out / "attention").mkdir(exist_ok=True)
                attention_heatmap(out / "attention" / f"{n:02d}.png", best.source_pieces, best.target_pieces,
                                  best.attention.numpy(), title=f"{name} sentence {n}: {best.text}"[:120])
        (out / "settings.json").write_text(json.dumps(flatten(cfg), indent=2) + "\n", encoding="utf-8")
    how = (f"sampling (temperature {search.temperature}, top-k {search.top_k}, top-p {search.top_p}, seed "
           f"{search.seed})" if search.sampling else f"beam {search.beam}")
    print(f"decode {name}: {len(results):,} sentences, {how}" + (f", {search.nbest}-best" if search.nbest > 1 else ""))


if __name__ == "__main__":
    run_guarded(main, "decode")
