"""What each speed trick of seq2seq/fast/ buys end to end: the code with it against the code without it.

    python bench/trick_value.py [--repeats 3] [--work bench/work] [--bundle DIR ...] [--only NAME ...]

Training: one epoch of the Joey NMT peer configuration (LSTM, Bahdanau attention, input feeding,
the configuration every training trick applies to) on the 5,000 sampled Multi30k pairs of
bench/joeynmt_compare.py's ``speed`` phase, target tokens/s. Each run is its own process (the
allocator trick is process-wide); a round runs the full code once and the code without each
trick once, in an order that rotates between rounds, ``--repeats`` rounds.

With ``--steps N`` the training tricks are timed instead on the first N batches of an epoch over all
the training pairs, the
full code and the code without the trick taking turns batch by batch in one process (finer: whole
runs in separate processes move by several percent from one to the next; the allocator, which acts
on the whole process, is left to whole runs).

Decoding: test_2016_flickr with each ``--bundle`` (trained Multi30k en->de models), greedy and
beam 5, sentences/s; the variants translate in turns inside one process, batch by batch (whole
passes in turns moved by up to 15% here even where the two codes were the same), ``--repeats``
passes. How many sentences get the same translations (tokens) as with the full code is printed.

"Without" a trick means the model's variant (seq2seq/fast/variants.py) built with the
reference's part instead, or the package function swapped for the plain one in this benchmark's
process only. Prints a Markdown table of medians (ratio: with / without; above 1 the trick pays)
and writes WORK/trick_value.json. Needs ../shared/data/multi30k (as bench/joeynmt_compare.py).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

TRAINING_TRICKS = ["unrolled", "dropout", "by_length", "fused_loss", "allocator"]
DECODING_TRICKS = ["projected", "by_length", "fused_feed"]


def variant_without(trick: str, int8: bool = False):
    """The CPU variant (or the int8 one) with the reference's part where ``trick`` was."""
    from torch import nn

    from seq2seq.fast import variants as v
    from seq2seq.model.decoder import Decoder
    from seq2seq.model.encoder import Encoder
    from seq2seq.model.recurrence import StepRecurrence

    base = v.Int8Seq2Seq if int8 else v.CpuSeq2Seq
    if trick in ("none", "control"):
        return base
    decoder, encoder = base.decoder_class, base.encoder_class
    if trick == "unrolled":
        decoder = type("NoUnrolled", (decoder,), {"forward": v.ProjectedDecoder.forward,
                                                  "teacher_forced": v.ProjectedDecoder.teacher_forced})
    elif trick == "dropout":
        recurrence = type("PlainDropout", (decoder.recurrence_class,), {"dropout_class": nn.Dropout})
        decoder = type("PlainDropout", (decoder,), {"dropout_class": nn.Dropout, "recurrence_class": recurrence})
        encoder = type("PlainDropout", (encoder,), {"dropout_class": nn.Dropout})
    elif trick == "by_length":
        encoder = type("Packed", (encoder,), {"padded": Encoder.padded})
    elif trick == "projected":  # the reference's memory and step (no unrolled steps: they need the shares)
        decoder = type("Reference", (Decoder,), {"dropout_class": decoder.dropout_class,
                                                 "recurrence_class": decoder.recurrence_class})
    elif trick == "fused_feed":
        recurrence = type("Unfused", (v.CpuStepRecurrence,), {})
        decoder = type("Unfused", (decoder,), {"recurrence_class": recurrence})
    elif trick not in ("fused_loss", "allocator", "control"):
        raise ValueError(f"unknown trick {trick!r}")
    assert issubclass(decoder.recurrence_class, StepRecurrence)
    return type(f"Without_{trick}", (base,), {"decoder_class": decoder, "encoder_class": encoder})


def patch_functions(trick: str) -> None:
    """Swap a package function for the plain one, in this process only."""
    import torch
    import torch.nn.functional as F

    if trick == "fused_loss":
        from seq2seq.training import step

        def plain_loss(features, weight, bias, gold, label_smoothing=0.0):
            return F.cross_entropy(F.linear(features, weight, bias), gold, label_smoothing=label_smoothing,
                                   reduction="sum")
        step.projected_cross_entropy = plain_loss
    elif trick == "allocator":
        from seq2seq.training import trainer
        trainer.reuse_freed_memory = lambda: False


def train_once(work: Path, trick: str) -> float:
    """One training epoch (see the module) without ``trick`` ("none": the full code): tokens/s."""
    from joeynmt_compare import SPEED_PAIRS
    from ours_multi30k import speed_epoch
    from seq2seq.training import trainer

    variant = variant_without(trick)
    trainer.build_model = lambda config, src, tgt, device, **_: variant(config, src, tgt)
    patch_functions(trick)
    result, _ = speed_epoch(work, SPEED_PAIRS, log=lambda line: None)
    return result.history[0].tokens_per_second


STEP_TRICKS = ["control", "unrolled", "dropout", "by_length", "fused_loss"]  # control: the full code twice


@contextlib.contextmanager
def swapped(trick: str):
    """The package functions of ``trick`` swapped for the plain ones while inside (see patch_functions)."""
    from seq2seq.training import step

    saved = step.projected_cross_entropy
    patch_functions(trick)
    try:
        yield
    finally:
        step.projected_cross_entropy = saved


def training_steps(work: Path, tricks: list[str], batches: int, default_model: bool = False
                   ) -> dict[str, dict[str, float]]:
    """Training steps (loss, backward, clipping, fused Adam) of the peer configuration on the first
    ``batches`` batches of an epoch over all Multi30k training pairs, the full code and the code without each trick
    taking turns batch by batch in this one process (their order swapped every batch): seconds in all.
    ``default_model``: the default configuration (params.yaml's model and train sections) instead.
    Finer than whole runs in separate processes, whose speed moves by several percent between runs."""
    import torch

    from ours_multi30k import MAX_TOKENS, PEER_MODEL, encode, lines, peer_training, steps_in_turns, tokenizers
    from seq2seq.data.batching import make_batch, token_batches
    from seq2seq.fast.allocator import reuse_freed_memory
    from seq2seq.fast.variants import as_variant
    from seq2seq.training.step import batch_loss

    torch.set_num_threads(2)
    reuse_freed_memory()
    data = work / "data"
    src_tok, tgt_tok = tokenizers(work)
    split = encode(src_tok, tgt_tok, lines(data / "train.en"), lines(data / "train.de"), MAX_TOKENS)
    src, tgt = split.src, split.tgt  # all training pairs: batches of every kind of length
    from seq2seq.params.config import ModelConfig, TrainConfig

    model_config, config = (ModelConfig(), TrainConfig()) if default_model else (PEER_MODEL, peer_training(1, 0))
    order = token_batches([len(s) for s in src], [len(t) for t in tgt], config.batch_tokens, config.seed, 1)
    order = order[:batches]
    batches = [make_batch([src[j] for j in indices], [tgt[j] for j in indices]) for indices in order]
    results: dict[str, dict[str, float]] = {}
    for trick in tricks:
        torch.manual_seed(config.seed)
        full = variant_without("none")(model_config, src_tok.vocab_size, tgt_tok.vocab_size).train()
        models = {"with": full, "without": as_variant(full, variant_without(trick))}
        # a constant 1e-3 (the peer's rate): the default's 0.003 without its warm-up sends a model into
        # slow denormal arithmetic within the epoch, which would time the numbers, not the code
        contenders = {name: (m, torch.optim.Adam(m.parameters(), lr=1e-3, fused=True), batch_loss)
                      for name, m in models.items()}
        seconds = steps_in_turns(contenders, batches, config.label_smoothing, config.clip_norm,
                                 lambda name: swapped(trick) if name == "without" else contextlib.nullcontext())
        results[trick] = seconds
        print(f"  training steps without {trick}: {seconds['without']:.2f} s, with: {seconds['with']:.2f} s "
              f"(with / without {seconds['without'] / seconds['with']:.3f})", flush=True)
    return results


def training(work: Path, repeats: int, tricks: list[str]) -> dict[str, list[float]]:
    speeds: dict[str, list[float]] = {name: [] for name in ["none"] + tricks}
    names = list(speeds)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            out = subprocess.run([sys.executable, __file__, "--train-once", name, "--work", str(work)], check=True,
                                 capture_output=True, text=True).stdout
            speeds[name].append(float(out.strip().splitlines()[-1]))
            print(f"  training without {name}: {speeds[name][-1]:.0f} tokens/s", flush=True)
    return speeds


def decoding(work: Path, bundles: list[Path], repeats: int, tricks: list[str]) -> dict:
    """Each bundle's test_2016_flickr translations, greedy and beam 5, by the full code and by the code
    without each trick, taking turns batch by batch (64 sentences, longest first, as translate_ids
    batches them; the order rotates every batch), ``repeats`` passes: seconds in all, sentences/s."""
    import torch

    from ours_multi30k import lines
    from seq2seq.data.batching import source_tensor
    from seq2seq.decoding.torch_backend import search_batch
    from seq2seq.decoding.translator import Translator, quantize_int8
    from seq2seq.fast.variants import as_variant
    from seq2seq.search.settings import SearchSettings

    torch.set_num_threads(2)
    sources = lines(work / "data" / "test_2016_flickr.en")
    results: dict = {}
    for bundle in bundles:
        plain = Translator.load(bundle, device="cpu").bundle
        ids = plain.src_tokenizer.encode(sources)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        chunks = [order[start:start + 64] for start in range(0, len(order), 64)]
        for quantize in ("none", "int8"):
            names = ["none"] + [t for t in tricks if (t == "fused_feed") == (quantize == "int8")]
            models = {name: as_variant(plain.model, variant_without(name)).eval() if quantize == "none"
                      else quantize_int8(plain.model, variant_without(name, int8=True)) for name in names}
            for beam in (1, 5):
                settings = SearchSettings(beam=beam, batch_size=64)
                seconds = {name: 0.0 for name in names}
                outputs: dict[str, dict[int, list[int]]] = {name: {} for name in names}
                turn = 0
                for _ in range(repeats):
                    for chunk in chunks:
                        src, lengths = source_tensor([ids[i] for i in chunk])
                        turn += 1
                        shift = turn % len(names)
                        for name in names[shift:] + names[:shift]:
                            started = time.perf_counter()
                            hyps = search_batch(models[name], src, lengths, settings)
                            seconds[name] += time.perf_counter() - started
                            outputs[name].update((i, h[0].tokens) for i, h in zip(chunk, hyps))
                key = f"{bundle.name} {quantize} beam {beam}"
                results[key] = {name: {"sentences_per_second": len(ids) * repeats / seconds[name],
                                       "identical": sum(outputs[name][i] == outputs["none"][i] for i in outputs[name]),
                                       "sentences": len(ids)}
                                for name in names}
                print(f"  {key}: " + ", ".join(f"{n} {results[key][n]['sentences_per_second']:.1f}/s "
                                               f"({results[key][n]['identical']} identical)" for n in names),
                      flush=True)
    return results


def table(results: dict) -> str:
    rows = ["| where | without | with / without (medians) | identical outputs |", "|---|---|---|---|"]
    train = results.get("training", {})
    if train:
        full = statistics.median(train["none"])
        for name, speeds in train.items():
            if name != "none":
                rows.append(f"| training, peer config, tokens/s {full:.0f} with all | {name} | "
                            f"{full / statistics.median(speeds):.3f} | |")
    for name, seconds in results.get("training_steps", {}).items():
        rows.append(f"| training steps, {'default' if results.get('default_model') else 'peer'} config, in turns | "
                    f"{name} | {seconds['without'] / seconds['with']:.3f} | |")
    for key, by_name in results.get("decoding", {}).items():
        full = by_name["none"]["sentences_per_second"]
        for name, entry in by_name.items():
            if name != "none":
                rows.append(f"| decoding {key} | {name} | {full / entry['sentences_per_second']:.3f}"
                            f" | {entry['identical']}/{entry['sentences']} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    parser.add_argument("--bundle", type=Path, action="append", default=[], help="a trained en->de model bundle")
    parser.add_argument("--only", action="append", default=[], help="measure only these tricks")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--steps", type=int, default=0, metavar="N",
                        help="instead of whole runs: the first N training batches, in turns in one process")
    parser.add_argument("--default-model", action="store_true",
                        help="with --steps: the default configuration (GRU, Luong) instead of the peer's")
    parser.add_argument("--train-once", metavar="TRICK", help=argparse.SUPPRESS)  # one run, in its own process
    args = parser.parse_args()
    work = args.work.resolve()
    if args.train_once:
        print(train_once(work, args.train_once))
        return
    from joeynmt_compare import phase_data
    phase_data(work)
    results: dict = {}
    if args.steps:
        results["default_model"] = args.default_model
        results["training_steps"] = training_steps(work, [t for t in STEP_TRICKS if not args.only or t in args.only],
                                                   args.steps, args.default_model)
    elif not args.skip_training:
        results["training"] = training(work, args.repeats, [t for t in TRAINING_TRICKS
                                                            if not args.only or t in args.only])
    if args.bundle:
        results["decoding"] = decoding(work, args.bundle, args.repeats, [t for t in DECODING_TRICKS
                                                                         if not args.only or t in args.only])
    (work / "trick_value.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
