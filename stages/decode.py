"""decode NAME: translate test set NAME (data/tests/NAME/pairs.tsv) with data/model into data/decode/NAME/.

Writes hypotheses.txt (the best translation of each test sentence, one per line),
alignments.txt (each one's word alignment from attention, Pharaoh format; attention models only),
settings.json (the decode params used), when decode.nbest > 1 nbest.tsv (line, rank, score,
log_prob, translation; line counts test sentences from 1), and attention/NN.png, attention
heatmaps of the first decode.attention_examples test sentences (:mod:`seq2seq.decoding.outputs`).
"""
import dataclasses
import sys

from seq2seq.core.guard import run_guarded
from seq2seq.data.clean import read_split
from seq2seq.data.testsets import PAIRS, test_set_from_args
from seq2seq.decoding.outputs import decode_test_set, search_label
from seq2seq.decoding.translator import Translator
from seq2seq.params.config import flatten, load_params


def main() -> None:
    params = load_params()
    name, _ = test_set_from_args(params, sys.argv[1:], "decode")
    cfg = params.decode
    translator = Translator.load("data/model", device=cfg.device, quantize=cfg.quantize,
                                 **dataclasses.asdict(cfg.search))
    sources = list(read_split(f"data/tests/{name}/{PAIRS}")["source"])
    decode_test_set(translator, name, sources, f"data/decode/{name}", flatten(cfg), cfg.search.nbest,
                    cfg.attention_examples)
    print(f"decode {name}: {len(sources):,} sentences, {search_label(cfg.search)}")


if __name__ == "__main__":
    run_guarded(main, "decode")
