"""tokenize: train SentencePiece on data/clean/train.tsv and encode the train and valid splits into data/tokens/.

Run as ``python -m stages.tokenize`` (as dvc.yaml does): run as a file path, this
script would shadow the standard library's ``tokenize`` module.
"""
from seq2seq.core.atomic import atomic_dir
from seq2seq.core.guard import run_guarded
from seq2seq.data.clean import read_split
from seq2seq.data.subwords import Tokenizer, save_encoded, train_sentencepiece
from seq2seq.params.config import load_params


def main() -> None:
    params = load_params()
    cfg = params.tokenize
    splits = {name: read_split(f"data/clean/{name}.tsv") for name in ("train", "valid")}
    train = splits["train"]
    if cfg.joint:
        proto = train_sentencepiece(list(train["source"]) + list(train["target"]), cfg, "joint")
        src_proto = tgt_proto = proto
    else:
        src_proto = train_sentencepiece(train["source"], cfg, "source")
        tgt_proto = train_sentencepiece(train["target"], cfg, "target")
    src_tok, tgt_tok = Tokenizer(src_proto, "source"), Tokenizer(tgt_proto, "target")
    with atomic_dir("data/tokens") as out:
        (out / "src.spm.model").write_bytes(src_proto)
        (out / "tgt.spm.model").write_bytes(tgt_proto)
        for name, frame in splits.items():
            save_encoded(out / f"{name}.npz", src_tok.encode(frame["source"]), tgt_tok.encode(frame["target"]))
    print(f"tokenize: vocabularies {src_tok.vocab_size:,} / {tgt_tok.vocab_size:,}, "
          + ", ".join(f"{n} {len(f):,}" for n, f in splits.items()))


if __name__ == "__main__":
    run_guarded(main, "tokenize")
