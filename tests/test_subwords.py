import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.core.errors import DataError, ModelBundleError
from seq2seq.data.subwords import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    train_sentencepiece,
)
from seq2seq.params.config import TokenizeConfig


@pytest.fixture(scope="module")
def tokenizer():
    from tests.conftest import synthetic_pairs

    proto = train_sentencepiece([en for en, _ in synthetic_pairs(400)], TokenizeConfig(vocab_size=30), "source")
    return Tokenizer(proto, "source")


def test_specials_and_roundtrip(tokenizer):
    assert tokenizer.vocab_size == 30
    ids = tokenizer.encode(["The red cat sees the dog."])
    assert all(i > EOS_ID for i in ids[0])
    assert tokenizer.decode([ids[0] + [EOS_ID, PAD_ID]]) == ["The red cat sees the dog."]
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)


def test_vocab_too_large_is_translated(tmp_path):
    with pytest.raises(DataError, match=r"tokenize.vocab_size: 5000 is larger than the source text supports; set it to \d+"):
        train_sentencepiece(["a b c", "b c d"] * 10, TokenizeConfig(vocab_size=5000), "source")
    from tests.conftest import synthetic_pairs

    # as an upper bound it gives what the text supports instead
    text = [en for en, _ in synthetic_pairs(400)]
    tokenizer = Tokenizer(train_sentencepiece(text, TokenizeConfig(vocab_size=5000, hard_vocab_limit=False), "src"))
    assert 4 < tokenizer.vocab_size < 5000


def test_invalid_model_is_refused():
    with pytest.raises(ModelBundleError, match="not a SentencePiece model"):
        Tokenizer(b"garbage", "bad.model")


ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZáéíóúñüÁÉÍÓÚÑ¿¡.,;:!?'-0123456789 "


@pytest.fixture(scope="module")
def alphabet_tokenizer():
    from tests.conftest import synthetic_pairs

    text = [a for pair in synthetic_pairs(300) for a in pair] + [ALPHABET.strip()] * 3
    return Tokenizer(train_sentencepiece(text, TokenizeConfig(vocab_size=120), "text"))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_decode_encode_gives_back_the_normalised_text(alphabet_tokenizer, text):
    from seq2seq.data.clean import normalize_text

    normal = normalize_text(text)
    assert alphabet_tokenizer.decode(alphabet_tokenizer.encode([normal]))[0] == normal


def test_sampled_segmentations_depend_on_the_seed_alone_and_spell_the_same_text(tokenizer):
    from tests.conftest import synthetic_pairs

    texts = [en for en, _ in synthetic_pairs(200)]
    first = tokenizer.sample(texts, 0.1, seed=7)
    other = tokenizer.sample(texts, 0.1, seed=8)
    assert tokenizer.sample(texts, 0.1, seed=7) == first  # after another seed's draw, too
    assert first != other and first != tokenizer.encode(texts)
    assert tokenizer.decode(first) == texts and tokenizer.decode(other) == texts
    # a large alpha concentrates on the most likely segmentation
    assert tokenizer.sample(texts, 1000.0, seed=7) == tokenizer.encode(texts)


def test_bpe_dropout_samples_segmentations():
    from tests.conftest import synthetic_pairs

    texts = [en for en, _ in synthetic_pairs(200)]
    bpe = Tokenizer(train_sentencepiece(texts, TokenizeConfig(vocab_size=40, model_type="bpe"), "source"), "bpe")
    assert bpe.sample(texts, 0.0, seed=1) == bpe.encode(texts)  # no merge dropped: BPE's own segmentation
    dropped = bpe.sample(texts, 0.3, seed=1)
    assert dropped != bpe.encode(texts) and bpe.decode(dropped) == texts


@pytest.mark.parametrize("joint", [False, True])
def test_tokenizers_and_splits_made_a_chunk_at_a_time_are_those_of_the_whole_text(tmp_path, joint):
    """The tokenize stage streams the clean splits: the same SentencePiece models as from the whole
    lists (the first max_training_sentences of a side, or of all sources then all targets), and the
    same ids as encoding every sentence at once."""
    from seq2seq.data.encoded import load_encoded
    from seq2seq.data.token_splits import encode_split, train_tokenizers
    from tests.conftest import synthetic_pairs, write_tsv

    pairs = synthetic_pairs(400)
    split = write_tsv(tmp_path / "train.tsv", pairs)
    config = TokenizeConfig(vocab_size=60, hard_vocab_limit=False, joint=joint, max_training_sentences=300)
    src_proto, tgt_proto = train_tokenizers(split, config, chunk_bytes=500)
    sources, targets = [a for a, _ in pairs], [b for _, b in pairs]
    if joint:
        assert src_proto == tgt_proto == train_sentencepiece(sources + targets, config, "joint")
    else:
        assert src_proto == train_sentencepiece(sources, config, "source")
        assert tgt_proto == train_sentencepiece(targets, config, "target")
    src_tok, tgt_tok = Tokenizer(src_proto), Tokenizer(tgt_proto)
    assert encode_split(split, tmp_path / "encoded", src_tok, tgt_tok, chunk_bytes=700) == 400
    encoded = load_encoded(tmp_path / "encoded")
    assert [s.tolist() for s in encoded.src] == src_tok.encode(sources)
    assert [t.tolist() for t in encoded.tgt] == tgt_tok.encode(targets)
