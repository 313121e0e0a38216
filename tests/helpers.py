"""Small builders shared by tests: tokenizers and a trained tiny bundle."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seq2seq.data.encoded import EncodedSplit
from seq2seq.data.subwords import Tokenizer, train_sentencepiece
from seq2seq.params.config import ModelConfig, TokenizeConfig, TrainConfig
from tests.conftest import synthetic_pairs

ROOT = Path(__file__).resolve().parents[1]

TINY_MODEL = ModelConfig(cell="gru", embedding_size=32, hidden_size=32, dropout=0.0)


def tokenizers(pairs=None) -> tuple[Tokenizer, Tokenizer]:
    pairs = pairs or synthetic_pairs(400)
    src = train_sentencepiece([a for a, _ in pairs], TokenizeConfig(vocab_size=30), "source")
    tgt = train_sentencepiece([b for _, b in pairs], TokenizeConfig(vocab_size=30), "target")
    return Tokenizer(src, "source"), Tokenizer(tgt, "target")


def encode(pairs, src_tok: Tokenizer, tgt_tok: Tokenizer) -> EncodedSplit:
    import numpy as np

    src = [np.asarray(s, dtype=np.int32) for s in src_tok.encode([a for a, _ in pairs])]
    tgt = [np.asarray(t, dtype=np.int32) for t in tgt_tok.encode([b for _, b in pairs])]
    return EncodedSplit(src, tgt)


def train_tiny_bundle(path: Path, epochs: int = 2, model: ModelConfig = TINY_MODEL, seed: int = 42) -> Path:
    import torch

    from seq2seq.bundle.bundle import save_bundle
    from seq2seq.training.trainer import train_model

    pairs = synthetic_pairs(300)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=epochs, batch_tokens=300, warmup_steps=5, valid_bleu_sentences=0, threads=1, seed=seed)
    result = train_model(model, cfg, split, split, [b for _, b in pairs], src_tok.vocab_size, tgt_tok,
                         torch.device("cpu"), log=lambda line: None)
    save_bundle(path, result.model, src_tok, tgt_tok, {"src_lang": "en", "tgt_lang": "es", "mlflow": {}})
    return path


def training_runs(client, experiment_id: str) -> list:
    """The experiment's training runs (one per trained model)."""
    return client.search_runs([experiment_id], filter_string="tags.`seq2seq.kind` = 'training'")


def evaluation_runs(client, experiment_id: str, parent_run_id: str | None = None) -> list:
    """The experiment's evaluation runs (a model x a test set x decode settings), of one model if given."""
    query = "tags.`seq2seq.kind` = 'evaluation'"
    if parent_run_id:
        query += f" and tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return client.search_runs([experiment_id], filter_string=query)


def resumed_mid_epoch_as_straight(config, tmp_path: Path, monkeypatch, resegment=None):
    """Train the tiny model on 200 synthetic pairs with ``config`` twice: straight through, and resumed
    from the first checkpoint the straight run wrote inside epoch 2 (``config.checkpoint_every`` must
    fall there); assert that both logged the same training losses and ended with the same weights, bit
    for bit. Returns both results and the runner ``train(folder, resume=None, config=config)``.
    ``resegment``: a callable ``(pairs, src_tok, tgt_tok) -> resegment`` for train_model."""
    import shutil

    import torch

    from seq2seq.training import trainer as trainer_module
    from seq2seq.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from seq2seq.training.trainer import train_model

    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    epochs = None if resegment is None else resegment(pairs, src_tok, tgt_tok)

    def train(folder, resume=None, config=config):
        return train_model(TINY_MODEL, config, split, split, [b for _, b in pairs], src_tok.vocab_size, tgt_tok,
                           torch.device("cpu"), log=lambda line: None, checkpoint_dir=folder, resume=resume,
                           resegment=epochs)

    saved_steps: list[int] = []
    real_save = trainer_module.save_checkpoint

    def save_and_keep_one(folder, payload):
        real_save(folder, payload)
        progress = payload["progress"]
        if progress["epoch"] == 2 and progress["batch"] > 0 and not saved_steps:
            saved_steps.append(progress["step"])
            shutil.copy(folder / CHECKPOINT_FILE, tmp_path / "mid.pt")

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_and_keep_one)
    straight = train(tmp_path / "a")
    assert saved_steps, "no checkpoint inside epoch 2"
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "mid.pt", tmp_path / "b" / CHECKPOINT_FILE)
    checkpoint = torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=False)
    resumed = train(tmp_path / "b", resume=load_checkpoint(tmp_path / "b", checkpoint["fingerprint"])[0])
    assert [r.train_loss for r in straight.history] == [r.train_loss for r in resumed.history]
    assert [r.valid_loss for r in straight.history] == [r.valid_loss for r in resumed.history]
    for name, x in straight.model.state_dict().items():
        assert torch.equal(x, resumed.model.state_dict()[name]), name
    return straight, resumed, train


def cli(*args, input_text=None, blocked=(), cwd=None):
    """``seq2seq ARGS`` in a fresh process in which the ``blocked`` packages cannot be imported;
    ``input_text`` (str, or bytes to send as they are) is its standard input."""
    code = ("import sys\n"
            f"for name in {list(blocked)!r}: sys.modules[name] = None\n"
            "from seq2seq.cli import main\n"
            f"try:\n    main({list(args)!r})\n"
            "finally:\n"
            "    loaded = sorted(n for n, m in sys.modules.items() if m is not None and n.split('.')[0] in "
            "('torch', 'mlflow', 'pandas'))\n"
            "    print('LOADED', *loaded[:3], file=sys.stderr)\n")
    raw = isinstance(input_text, bytes)
    proc = subprocess.run([sys.executable, "-c", code], input=input_text, capture_output=True, text=not raw,
                          timeout=300, cwd=cwd or ROOT)
    if raw:
        proc.stdout, proc.stderr = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    return proc


def one_line_error(proc, *words):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = "\n".join(line for line in proc.stderr.strip().split("\n") if not line.startswith("LOADED"))
    assert message.count("\n") == 0 and message.startswith("error: "), message
    for word in words:
        assert word in message, message
