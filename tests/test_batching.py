import numpy as np
import torch

from seq2seq.data.batching import make_batch, pad, token_batches
from seq2seq.data.subwords import BOS_ID, EOS_ID, PAD_ID


def test_every_sentence_once_and_within_budget():
    rng = np.random.default_rng(0)
    src = rng.integers(1, 30, size=500).tolist()
    tgt = rng.integers(1, 30, size=500).tolist()
    batches = token_batches(src, tgt, 200, seed=1, epoch=1)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    for b in batches:
        assert len(b) == 1 or max(tgt[i] + 1 for i in b) * len(b) <= 200


def test_batches_are_reproducible_and_change_per_epoch():
    lengths = list(range(1, 100)) * 3
    a = token_batches(lengths, lengths, 100, seed=3, epoch=1)
    b = token_batches(lengths, lengths, 100, seed=3, epoch=1)
    c = token_batches(lengths, lengths, 100, seed=3, epoch=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a, c))


def test_make_batch_shifts_target():
    batch = make_batch([np.array([5, 6]), np.array([7])], [np.array([8, 9, 10]), np.array([11])])
    assert batch.src.tolist() == [[5, 6, EOS_ID], [7, EOS_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [3, 2]
    assert batch.prev_tokens.tolist() == [[BOS_ID, 8, 9, 10], [BOS_ID, 11, PAD_ID, PAD_ID]]
    assert batch.gold.tolist() == [[8, 9, 10, EOS_ID], [11, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.n_tokens == 6


def test_pad_empty():
    assert pad([[], []]).shape == torch.Size([2, 1])
