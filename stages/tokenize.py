"""tokenize: train SentencePiece on data/clean/train.tsv and encode the train and valid splits into
data/tokens/ (src.spm.model, tgt.spm.model, and train/, valid/: flat arrays, memory-mapped by train).

Run as ``python -m stages.tokenize`` (as dvc.yaml does): run as a file path, this
script would shadow the standard library's ``tokenize`` module.
"""
from seq2seq.core.atomic import atomic_dir
from seq2seq.core.guard import run_guarded
from seq2seq.data.subwords import Tokenizer
from seq2seq.data.token_splits import encode_split, train_tokenizers
from seq2seq.params.config import load_params


def main() -> None:
    params = load_params()
    src_proto, tgt_proto = train_tokenizers("data/clean/train.tsv", params.tokenize)
    src_tok, tgt_tok = Tokenizer(src_proto, "source"), Tokenizer(tgt_proto, "target")
    with atomic_dir("data/tokens") as out:
        (out / "src.spm.model").write_bytes(src_proto)
        (out / "tgt.spm.model").write_bytes(tgt_proto)
        pairs = {name: encode_split(f"data/clean/{name}.tsv", out / name, src_tok, tgt_tok,
                                    progress=f"tokenize {name}") for name in ("train", "valid")}
    print(f"tokenize: vocabularies {src_tok.vocab_size:,} / {tgt_tok.vocab_size:,}, "
          + ", ".join(f"{n} {count:,}" for n, count in pairs.items()))


if __name__ == "__main__":
    run_guarded(main, "tokenize")
