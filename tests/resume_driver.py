"""Trains a tiny model with checkpoints; run as a process so tests can kill -9 it.

python -m tests.resume_driver CHECKPOINT_DIR OUT_WEIGHTS
"""
import sys
from pathlib import Path

import torch

from seq2seq.config import TrainConfig
from seq2seq.training import train_model
from tests.conftest import synthetic_pairs
from tests.helpers import TINY_MODEL, encode, tokenizers


def main() -> None:
    checkpoint_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    pairs = synthetic_pairs(300)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    config = TrainConfig(epochs=3, batch_tokens=200, warmup_steps=5, valid_bleu_sentences=5, threads=1,
                         checkpoint_every=15, seed=5)
    result = train_model(TINY_MODEL, config, split, split, [b for _, b in pairs], src_tok.vocab_size, tgt_tok,
                         torch.device("cpu"), checkpoint_dir=checkpoint_dir, data_id="tiny")
    torch.save({"state": result.model.state_dict(), "curve": [r.train_loss for r in result.history]}, out)


if __name__ == "__main__":
    main()
