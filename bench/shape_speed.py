"""Training speed of model shapes and batch sizes on a recipe's tokens, in turns, in one process.

    python bench/shape_speed.py recipes/multi30k-en-de/data/tokens [--hidden 256 384 512] \
        [--encoder 0 512] [--batch-tokens 1000 2000] [--steps-of-1000 60] [--rounds 2]

Each (hidden size, encoder size, batch size) trains on the same first batches of epoch 1 (GRU,
Luong attention, tied embeddings, dropout 0.3, bf16 as the best recipe), after 5 warm-up steps,
for about ``--steps-of-1000`` x 1,000 target tokens; the shapes take turns ``--rounds`` times and
the best round of each is printed (target tokens per second), with the CPU it ran on. Speed
only: whether a shape trains to a better model is the recipe's val set's to say.
"""
from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch

from seq2seq.data.encoded import load_encoded
from seq2seq.data.subwords import Tokenizer
from seq2seq.params.config import ModelConfig, TrainConfig
from seq2seq.training.trainer import Trainer


def tokens_per_second(model: ModelConfig, batch_tokens: int, tokens: Path, steps_of_1000: int) -> float:
    src, tgt = Tokenizer.load(tokens / "src.spm.model"), Tokenizer.load(tokens / "tgt.spm.model")
    train = load_encoded(tokens / "train")
    config = TrainConfig(epochs=1, batch_tokens=batch_tokens, precision="bf16", valid_bleu_sentences=0)
    trainer = Trainer(model, config, train, train, [], src.vocab_size, tgt, torch.device("cpu"),
                      on_validation=lambda record: None, log=lambda line: None, checkpoint_dir=None,
                      fingerprint="", checkpoint_meta={})
    order = trainer._order(1)
    split = trainer.split(1)
    for batch in order[:5]:
        trainer.train_step(trainer.host_batch(split, batch))
    started, seen = time.perf_counter(), 0
    for batch in order[5:5 + steps_of_1000 * 1000 // batch_tokens]:
        seen += trainer.train_step(trainer.host_batch(split, batch))[0]
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokens", type=Path, help="a tokenize stage's output folder (data/tokens)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 384, 512])
    parser.add_argument("--encoder", type=int, nargs="+", default=[0], help="model.encoder_hidden_size values")
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--steps-of-1000", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    shapes = list(itertools.product(args.hidden, args.encoder, args.batch_tokens))
    best: dict[tuple[int, int, int], float] = {}
    for _ in range(args.rounds):
        for hidden, encoder, batch_tokens in shapes:
            model = ModelConfig(cell="gru", attention="luong", dropout=0.3, tie_embeddings=True, hidden_size=hidden,
                                embedding_size=hidden, encoder_hidden_size=encoder)
            speed = tokens_per_second(model, batch_tokens, args.tokens, args.steps_of_1000)
            best[hidden, encoder, batch_tokens] = max(speed, best.get((hidden, encoder, batch_tokens), 0.0))
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| hidden | encoder | batch tokens | target tokens/s |\n|---|---|---|---|")
    for (hidden, encoder, batch_tokens), speed in best.items():
        print(f"| {hidden} | {encoder or hidden} | {batch_tokens} | {speed:,.0f} |")


if __name__ == "__main__":
    main()
