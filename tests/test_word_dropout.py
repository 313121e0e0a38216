"""Word dropout (train.word_dropout): which tokens it hides, and that training with it stays reproducible."""
import torch

from seq2seq.data.batching import make_batch
from seq2seq.data.subwords import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from seq2seq.params.config import TrainConfig
from seq2seq.training.trainer import train_model
from seq2seq.training.word_dropout import drop_words, hide_tokens
from tests.conftest import synthetic_pairs
from tests.helpers import TINY_MODEL, encode, resumed_mid_epoch_as_straight, tokenizers


def test_hides_real_tokens_at_the_asked_rate_and_never_the_specials():
    torch.manual_seed(0)
    ids = torch.randint(4, 50, (200, 100))
    ids[:, 0], ids[:, -1], ids[:10, 50:] = BOS_ID, EOS_ID, PAD_ID
    out = hide_tokens(ids, 0.25)
    changed = out != ids
    assert (out[changed] == UNK_ID).all()
    specials = ids <= EOS_ID
    assert not changed[specials].any()
    rate = changed[~specials].float().mean().item()
    assert 0.23 < rate < 0.27, rate


def test_drops_words_from_source_and_decoder_input_but_not_from_the_gold_targets():
    batch = make_batch([[5, 6, 7, 8, 9]] * 64, [[10, 11, 12, 13]] * 64)
    torch.manual_seed(1)
    dropped = drop_words(batch, 0.5)
    assert (dropped.src == UNK_ID).any() and (dropped.prev_tokens == UNK_ID).any()
    assert torch.equal(dropped.gold, batch.gold)
    assert dropped.tgt_lengths == batch.tgt_lengths and torch.equal(dropped.src_lengths, batch.src_lengths)
    assert drop_words(batch, 0.0) is batch


def _setup():
    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    return pairs, src_tok, tgt_tok, encode(pairs, src_tok, tgt_tok)


def test_training_with_word_dropout_is_reproducible_and_differs_from_training_without():
    pairs, src_tok, tgt_tok, split = _setup()

    def once(p):
        cfg = TrainConfig(epochs=2, batch_tokens=200, valid_bleu_sentences=0, threads=1, word_dropout=p)
        return train_model(TINY_MODEL, cfg, split, split, [b for _, b in pairs], src_tok.vocab_size, tgt_tok,
                           torch.device("cpu"), log=lambda line: None)

    a, b, plain = once(0.2), once(0.2), once(0.0)
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.train_loss for r in a.history] != [r.train_loss for r in plain.history]
    for name, x in a.model.state_dict().items():
        assert torch.equal(x, b.model.state_dict()[name]), name


def test_word_dropout_resumes_mid_epoch_to_the_same_weights(tmp_path, monkeypatch):
    """The masks come from the generator a checkpoint saves: a resumed run draws the same ones."""
    cfg = TrainConfig(epochs=3, batch_tokens=200, valid_bleu_sentences=0, threads=1, checkpoint_every=5,
                      word_dropout=0.2)
    resumed_mid_epoch_as_straight(cfg, tmp_path, monkeypatch)
