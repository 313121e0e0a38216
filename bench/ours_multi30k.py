"""This project's side of bench/joeynmt_compare.py, run as its own process (for peak RSS and wall time).

    python bench/ours_multi30k.py train WORK EPOCHS BUNDLE_DIR OUT_JSON
    python bench/ours_multi30k.py decode WORK BUNDLE_DIR BEAM HYP_FILE OUT_JSON [QUANTIZE]
    python bench/ours_multi30k.py speed WORK PAIRS OUT_JSON
    python bench/ours_multi30k.py flops WORK OUT_JSON
    python bench/ours_multi30k.py peak OUT_JSON

The model and training settings mirror ../shared/peers/joeynmt/m30k_en_de_rnn.yaml
(see ``PEER_MODEL`` and ``peer_training``); the data is WORK/data from the compare script.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seq2seq.bundle.bundle import save_bundle  # noqa: E402
from seq2seq.data.encoded import EncodedSplit  # noqa: E402
from seq2seq.data.subwords import Tokenizer, train_sentencepiece  # noqa: E402
from seq2seq.decoding.translator import Translator  # noqa: E402
from seq2seq.params.config import ModelConfig, TokenizeConfig, TrainConfig  # noqa: E402
from seq2seq.training.trainer import train_model  # noqa: E402

# Joey's "bidirectional LSTM of 256" has 256 per direction: an encoder output of 512.
PEER_MODEL = ModelConfig(cell="lstm", embedding_size=256, hidden_size=256, encoder_hidden_size=512, layers=1,
                         bidirectional=True, attention="bahdanau", input_feeding=True, dropout=0.2,
                         tie_embeddings=False)
MAX_TOKENS = 50  # Joey's data.{src,trg}.max_length: longer training pairs are dropped


def peer_training(epochs: int, valid_sentences: int) -> TrainConfig:
    """Adam at a constant 1e-3, ~2,000 target tokens a batch, no label smoothing or clipping, seed 42."""
    return TrainConfig(device="cpu", seed=42, epochs=epochs, batch_tokens=2000, learning_rate=1e-3,
                       lr_schedule="constant", warmup_steps=0, clip_norm=0.0, label_smoothing=0.0,
                       valid_bleu_sentences=valid_sentences, checkpoint_every=0, log_every=100)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def encode(src_tok: Tokenizer, tgt_tok: Tokenizer, src: list[str], tgt: list[str], limit: int | None) -> EncodedSplit:
    pairs = zip(src_tok.encode(src), tgt_tok.encode(tgt))
    kept = [(s, t) for s, t in pairs if limit is None or (0 < len(s) <= limit and 0 < len(t) <= limit)]
    return EncodedSplit([np.array(s, dtype=np.int32) for s, _ in kept], [np.array(t, dtype=np.int32) for _, t in kept])


def tokenizers(work: Path) -> tuple[Tokenizer, Tokenizer]:
    """SentencePiece unigram 8,000 per side, trained once on WORK/data and kept in WORK/ours/spm
    (the train, speed and flops commands all use these)."""
    spm_config = TokenizeConfig(vocab_size=8000, hard_vocab_limit=False, model_type="unigram",
                                character_coverage=1.0)
    kept = []
    for lang in ("en", "de"):
        path = work / "ours" / "spm" / f"{lang}.model"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            proto = train_sentencepiece(lines(work / "data" / f"train.{lang}"), spm_config, lang)
            path.with_suffix(".tmp").write_bytes(proto)
            path.with_suffix(".tmp").replace(path)
        kept.append(Tokenizer.load(path))
    return kept[0], kept[1]


def train(work: Path, epochs: int, bundle: Path, out: Path) -> None:
    data = work / "data"
    src_tok, tgt_tok = tokenizers(work)
    train_split = encode(src_tok, tgt_tok, lines(data / "train.en"), lines(data / "train.de"), MAX_TOKENS)
    valid_refs = lines(data / "val.de")
    valid_split = encode(src_tok, tgt_tok, lines(data / "val.en"), valid_refs, None)
    started = time.perf_counter()
    result = train_model(PEER_MODEL, peer_training(epochs, len(valid_split)), train_split, valid_split, valid_refs,
                         src_tok.vocab_size, tgt_tok, torch.device("cpu"))
    wall = time.perf_counter() - started
    save_bundle(bundle, result.model, src_tok, tgt_tok, {"src_lang": "en", "tgt_lang": "de"})
    history = result.history
    # tokens/s over the whole run, validation excluded (one record per epoch; </s> counted, as Joey does)
    epoch_tokens = sum(int(len(t) + 1) for t in train_split.tgt)
    seconds = sum(epoch_tokens / r.tokens_per_second for r in history)
    out.write_text(json.dumps({
        "parameters": result.parameters, "epochs": epochs, "target_tokens_per_epoch": epoch_tokens,
        "train_seconds": seconds, "tokens_per_second": epoch_tokens * len(history) / seconds,
        "wall_seconds": wall, "valid_bleu": [round(r.valid_bleu, 2) for r in history],
        "valid_loss": [r.valid_loss for r in history],
        "vocab": [src_tok.vocab_size, tgt_tok.vocab_size],
    }, indent=2))


def decode(work: Path, bundle: Path, beam: int, hyp: Path, out: Path, quantize: str = "none") -> None:
    translator = Translator.load(bundle, device="cpu", quantize=quantize, beam=beam, batch_size=64,
                                 length_penalty=1.0)
    source = lines(work / "data" / "test_2016_flickr.en")
    started = time.perf_counter()
    hypotheses = translator.translate(source)
    seconds = time.perf_counter() - started
    hyp.write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    out.write_text(json.dumps({"decode_seconds": seconds, "sentences": len(source)}))


def speed_epoch(work: Path, pairs: int, log=print):
    """One epoch of the peer configuration on ``pairs`` training pairs sampled with the seed (as Joey's
    ``sample_train_subset`` does), validated on 100 pairs: the training result and the pairs."""
    data = work / "data"
    src_tok, tgt_tok = tokenizers(work)
    split = encode(src_tok, tgt_tok, lines(data / "train.en"), lines(data / "train.de"), MAX_TOKENS)
    keep = np.sort(np.random.default_rng(42).choice(len(split), size=min(pairs, len(split)), replace=False))
    subset = EncodedSplit([split.src[i] for i in keep], [split.tgt[i] for i in keep])
    valid_refs = lines(data / "val.de")[:100]
    valid = encode(src_tok, tgt_tok, lines(data / "val.en")[:100], valid_refs, None)
    result = train_model(PEER_MODEL, peer_training(1, len(valid)), subset, valid, valid_refs, src_tok.vocab_size,
                         tgt_tok, torch.device("cpu"), log=log)
    return result, subset


def speed(work: Path, pairs: int, out: Path) -> None:
    """:func:`speed_epoch`'s training tokens/s."""
    result, subset = speed_epoch(work, pairs)
    record = result.history[0]
    out.write_text(json.dumps({"pairs": len(subset), "tokens_per_second": record.tokens_per_second,
                               "target_tokens": sum(len(t) + 1 for t in subset.tgt)}, indent=2))


def steps_in_turns(contenders: dict, batches: list, label_smoothing: float, clip_norm: float,
                   around=lambda name: contextlib.nullcontext()) -> dict[str, float]:
    """Optimizer steps (loss, backward, clipping, optimizer) of each contender on every batch, the
    contenders taking turns batch by batch, their order rotating: seconds each in all.
    ``contenders``: name -> (model, optimizer, batch_loss function); ``around(name)``: a context
    each of that contender's steps runs in."""
    from seq2seq.core.token_ids import PAD_ID

    names = list(contenders)
    seconds = {name: 0.0 for name in names}
    for number, batch in enumerate(batches):
        tokens = int((batch.gold != PAD_ID).sum())
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            model, optimizer, batch_loss = contenders[name]
            started = time.perf_counter()
            with around(name):
                loss = batch_loss(model, batch, label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                (loss / tokens).backward()
                if clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                optimizer.step()
            seconds[name] += time.perf_counter() - started
    return seconds


def flops(work: Path, out: Path, batches: int = 40) -> None:
    """Floating-point operations per target token of one training step (forward and backward)
    at the peer configuration, counted by torch.utils.flop_counter on the first ``batches``
    batches of epoch 1. oneDNN's fused LSTM is invisible to the counter, so it is switched
    off for the count: PyTorch's own LSTM then runs the same products as visible ops."""
    from torch.utils.flop_counter import FlopCounterMode

    from seq2seq.data.batching import make_batch, token_batches
    from seq2seq.fast import build_model
    from seq2seq.training.step import batch_loss

    data = work / "data"
    src_tok, tgt_tok = tokenizers(work)
    split = encode(src_tok, tgt_tok, lines(data / "train.en"), lines(data / "train.de"), MAX_TOKENS)
    config = peer_training(1, 1)
    order = token_batches([len(s) for s in split.src], [len(t) for t in split.tgt], config.batch_tokens,
                          config.seed, 1)[:batches]
    torch.manual_seed(config.seed)
    model = build_model(PEER_MODEL, src_tok.vocab_size, tgt_tok.vocab_size, "cpu").train()
    counter, tokens = FlopCounterMode(display=False), 0
    with warnings.catch_warnings(), torch.backends.mkldnn.flags(enabled=False), counter:
        warnings.simplefilter("ignore")  # torch.backends.mkldnn.flags warns about Intel GPUs' TF32
        for indices in order:
            batch = make_batch([split.src[i] for i in indices], [split.tgt[i] for i in indices])
            batch_loss(model, batch, config.label_smoothing).backward()
            tokens += batch.n_tokens
    out.write_text(json.dumps({"flop_per_target_token": counter.get_total_flops() / tokens, "batches": len(order),
                               "target_tokens": tokens}, indent=2))


def matmul_peak(out: Path, size: int = 2048, repeats: int = 5) -> None:
    """This machine's matrix-product roof: GFLOP/s of a size x size product, fp32 and bf16 (best of
    ``repeats`` timed rounds, after a warm-up), as ../shared/GUIDE.md measures it."""
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - started)
            if best > 2.0:  # a dtype without native support: one round says enough
                break
        peaks[f"{name}_gflops"] = 2 * size ** 3 / best / 1e9
    out.write_text(json.dumps(peaks | {"threads": torch.get_num_threads(), "size": size}, indent=2))


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "train":
        train(Path(args[0]), int(args[1]), Path(args[2]), Path(args[3]))
    elif command == "speed":
        speed(Path(args[0]), int(args[1]), Path(args[2]))
    elif command == "flops":
        flops(Path(args[0]), Path(args[1]))
    elif command == "peak":
        matmul_peak(Path(args[0]))
    elif command == "decode":
        decode(Path(args[0]), Path(args[1]), int(args[2]), Path(args[3]), Path(args[4]), *args[5:])
    else:
        sys.exit(f"error: unknown command {command!r}: use train, speed, decode, flops or peak")


if __name__ == "__main__":
    main()
