"""Trains a tiny model with checkpoints; run as a process so tests can kill -9 it.

python -m tests.resume_driver CHECKPOINT_DIR OUT_WEIGHTS
"""
import sys
from dataclasses import replace
from pathlib import Path

import torch

from seq2seq.params.config import TrainConfig
from seq2seq.training.trainer import find_checkpoint, train_model
from tests.conftest import synthetic_pairs
from tests.helpers import TINY_MODEL, encode, tokenizers


def main() -> None:
    checkpoint_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    pairs = synthetic_pairs(300)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    # a valid split it cannot learn (shuffled targets), so the plateau schedule has cuts to restore
    noise = encode(list(zip([a for a, _ in pairs], reversed([b for _, b in pairs]))), src_tok, tgt_tok)
    config = TrainConfig(epochs=3, batch_tokens=200, warmup_steps=5, valid_bleu_sentences=5, threads=1,
                         checkpoint_every=15, validate_every=12, lr_schedule="plateau", seed=5,
                         average_last=3)
    # N(0, 1) embeddings: with the scaled start the tiny model keeps lowering even this valid loss for 3
    # epochs, and the plateau schedule would have no cut to restore
    model = replace(TINY_MODEL, embedding_init="normal")
    resume, why = find_checkpoint(checkpoint_dir, model, config, "tiny")
    print(f"train: {why}", file=sys.stderr)
    result = train_model(model, config, split, noise, [b for _, b in pairs], src_tok.vocab_size, tgt_tok,
                         torch.device("cpu"), checkpoint_dir=checkpoint_dir, resume=resume, data_id="tiny")
    torch.save({"state": result.model.state_dict(), "curve": [(r.step, r.train_loss, r.valid_loss, r.learning_rate) for r in result.history]}, out)


if __name__ == "__main__":
    main()
