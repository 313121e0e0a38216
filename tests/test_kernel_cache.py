import hashlib
import os
import subprocess
import sys

from seq2seq.fast.kernel_cache import CAPACITY, VARIABLES, bound_kernel_caches
from tests.helpers import ROOT

# A tiny bf16 training (batches of many lengths: kernels of many shapes) in a process of its own, since the
# caches' capacities are read once per process; prints the capacities in force and a hash of the weights.
TRAIN_BF16 = """
import hashlib, os, torch
from seq2seq.params.config import TrainConfig
from seq2seq.training.trainer import train_model
from tests.conftest import synthetic_pairs
from tests.helpers import TINY_MODEL, encode, tokenizers
pairs = synthetic_pairs(200)
src_tok, tgt_tok = tokenizers(pairs)
split = encode(pairs, src_tok, tgt_tok)
cfg = TrainConfig(epochs=2, batch_tokens=150, warmup_steps=5, valid_bleu_sentences=0, threads=1, precision="bf16")
result = train_model(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                     log=lambda line: None)
digest = hashlib.sha256()
for name, tensor in result.model.state_dict().items():
    digest.update(name.encode() + tensor.float().numpy().tobytes())
print(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"], os.environ["LRU_CACHE_CAPACITY"], digest.hexdigest())
"""


def train_bf16(capacity: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    if capacity is not None:
        env |= {name: capacity for name in VARIABLES}
    out = subprocess.run([sys.executable, "-c", TRAIN_BF16], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def test_both_capacities_are_bounded_unless_the_user_named_one(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "64")
    assert bound_kernel_caches() == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(CAPACITY), "LRU_CACHE_CAPACITY": "64"}
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(CAPACITY)


def test_bf16_training_trains_the_same_weights_whatever_the_caches_keep():
    """Training bounds the caches itself (the user's value wins); a kernel built again computes what the
    evicted one did: the same weights with one kernel kept, the trainer's bound and oneDNN's default."""
    bounded = train_bf16(None)
    assert bounded[:2] == [str(CAPACITY)] * 2
    one = train_bf16("1")
    assert one[:2] == ["1", "1"]
    default = train_bf16("1024")
    assert default[:2] == ["1024", "1024"]
    assert bounded[2] == one[2] == default[2]
    assert len(bounded[2]) == len(hashlib.sha256().hexdigest())
