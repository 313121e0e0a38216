"""This code against an earlier revision on the alternating benchmark: training and decoding speed, same outputs.

    python bench/code_compare.py --base REV [--repeats 3] [--work bench/work] [--bundle DIR ...]

Both revisions run ``bench/ours_multi30k.py`` from their own tree (the earlier one from a git
worktree at WORK/base-REV), alternating, ``--repeats`` times each, in this one invocation:

* training: one epoch of the Joey NMT peer configuration (LSTM, Bahdanau attention, input
  feeding) on 5,000 sampled Multi30k pairs (the ``speed`` phase of bench/joeynmt_compare.py);
* with ``--train-steps N``: N training steps of the peer and of the default configuration, both
  revisions' models (the same initial weights) taking turns batch by batch in one process;
* decoding: test_2016_flickr with each ``--bundle`` (trained Multi30k en->de models), greedy and
  beam 5: decode seconds, and whether both revisions print exactly the same translations.

With ``--in-process`` decoding is timed inside one process instead: the base revision's package is
imported under another name (``seq2seq_base``) beside this one, and the two translate the test set
in turns batch by batch (64 sentences), ``--repeats`` passes. A greedy pass over 1,000 sentences
takes about 1.5 s, where separate processes, and even whole passes in turns, see several percent
of noise; batches in turns see much less. ``--export DIR``
(an exported folder, ``seq2seq export``) adds the exported model under ONNX Runtime, in turns too.
Outputs count as identical when every hypothesis has the same tokens, score and log-probability.

The package's modules have moved between revisions (a flat package, then subpackages, then layers);
:func:`module` finds each where the revision keeps it.

Prints a Markdown table (medians; ratios are this code over the base) and writes WORK/code_compare.json.
Needs ../shared/data/multi30k (as bench/joeynmt_compare.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from joeynmt_compare import SPEED_PAIRS, phase_data, sh  # noqa: E402


def worktree(work: Path, rev: str) -> Path:
    commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    tree = work / f"base-{commit}"
    if not tree.exists():
        sh(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT)
    return tree


def run(tree: Path, *args: str) -> None:
    sh([sys.executable, str(tree / "bench" / "ours_multi30k.py"), *args], cwd=tree)


def import_base_package(tree: Path, work: Path) -> None:
    """Make the base tree's ``seq2seq`` package importable as ``seq2seq_base`` (a renamed copy)."""
    import shutil

    copy = work / "base-package"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(tree / "seq2seq", copy / "seq2seq_base", ignore=shutil.ignore_patterns("__pycache__"))
    for path in (copy / "seq2seq_base").rglob("*.py"):  # the few absolute imports of the package itself
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("from seq2seq.", "from seq2seq_base.").replace("import seq2seq.",
                                                                                    "import seq2seq_base."),
                        encoding="utf-8")
    sys.path.insert(0, str(copy))


# Where each module has lived, newest first: subpackages in layers, subpackages, the flat package.
PLACES = {
    "translator": ["decoding.translator", "translator"],
    "onnx_translator": ["runtime.translator"],
    "config": ["params.config", "core.config", "config"],
    "subwords": ["data.subwords", "subwords"],
    "trainer": ["training.trainer", "training"],
}


def module(package: str, name: str):
    """The module ``name`` (a key of PLACES) of ``package`` (``seq2seq`` or ``seq2seq_base``), wherever
    that revision keeps it."""
    import importlib

    for place in PLACES[name]:
        try:
            return importlib.import_module(f"{package}.{place}")
        except ModuleNotFoundError:
            continue
    raise SystemExit(f"error: {package} has no {name} module at any of {PLACES[name]}")


def hypotheses(translator, sources: list[str], beam: int) -> list:
    """Each sentence's best hypothesis as (text, score, log_prob)."""
    return [(h[0].text, h[0].score, h[0].log_prob)
            for h in translator.translate_details(sources, beam=beam, batch_size=64)]


def decode_in_process(tree: Path, work: Path, bundles: list[Path], exports: list[Path], repeats: int) -> dict:
    """Both revisions' translators in one process, translating the test set in turns."""
    import time

    import_base_package(tree, work)
    sys.path.insert(0, str(ROOT))
    sources = (work / "data" / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()
    models = [(f"{b.resolve().parent.parent.name}/{b.name}",
               {name: module(package, "translator").Translator.load(b, device="cpu")
                for name, package in (("base", "seq2seq_base"), ("this", "seq2seq"))}) for b in bundles]
    models += [(f"{e.name} (ONNX Runtime)",
                {name: module(package, "onnx_translator").OnnxTranslator.load(e)
                 for name, package in (("base", "seq2seq_base"), ("this", "seq2seq"))}) for e in exports]
    # the sentences longest first, in the batches translation makes of them; the revisions take turns
    # batch by batch (whole passes in turns moved by up to 15% here where both codes were the same)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i].split()), reverse=True)
    chunks = [order[start:start + 64] for start in range(0, len(order), 64)]
    results = {}
    for label, loaded in models:
        for beam in (1, 5):
            key = f"{label} beam {beam}"
            seconds: dict[str, list[float]] = {name: [0.0] * repeats for name in loaded}
            outputs: dict[str, dict[int, tuple]] = {name: {} for name in loaded}
            for repeat in range(repeats):
                for number, chunk in enumerate(chunks):
                    turns = list(loaded.items())
                    for name, translator in (turns if (repeat + number) % 2 == 0 else turns[::-1]):
                        started = time.perf_counter()
                        found = hypotheses(translator, [sources[i] for i in chunk], beam)
                        seconds[name][repeat] += time.perf_counter() - started
                        outputs[name].update(zip(chunk, found))
            same = sum(outputs["base"][i] == outputs["this"][i] for i in range(len(sources)))
            same_text = sum(outputs["base"][i][0] == outputs["this"][i][0] for i in range(len(sources)))
            largest = max(abs(outputs["base"][i][1] - outputs["this"][i][1]) for i in range(len(sources)))
            results[key] = {"seconds": seconds, "identical": same, "identical_text": same_text,
                            "largest_score_difference": largest, "sentences": len(sources)}
    return results


def model_builder(package: str):
    """``(config, src_vocab, tgt_vocab) -> model`` for training on the CPU, as the revision builds it."""
    import importlib

    fast = importlib.import_module(f"{package}.fast")
    if hasattr(fast, "build_model"):  # variants chosen when the model is built
        return lambda config, src, tgt: fast.build_model(config, src, tgt, "cpu")
    seq2seq = importlib.import_module(f"{package}.model.seq2seq").Seq2Seq  # fast paths plugged into a built model
    return lambda config, src, tgt: fast.plug_in(seq2seq(config, src, tgt))


def train_steps_in_process(tree: Path, work: Path, batches: int) -> dict:
    """Training steps (loss, backward, clipping, fused Adam) of the peer and the default configurations
    on the first ``batches`` batches of an epoch over all Multi30k training pairs, both revisions' models (the same initial
    weights) taking turns batch by batch in this one process, their order swapped every batch:
    seconds in all, per configuration."""
    import dataclasses
    import importlib

    import torch

    import_base_package(tree, work)
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from ours_multi30k import MAX_TOKENS, PEER_MODEL, encode, lines, peer_training, steps_in_turns, tokenizers
    from seq2seq.data.batching import make_batch, token_batches
    from seq2seq.params.config import ModelConfig, TrainConfig

    torch.set_num_threads(2)
    data = work / "data"
    src_tok, tgt_tok = tokenizers(work)
    split = encode(src_tok, tgt_tok, lines(data / "train.en"), lines(data / "train.de"), MAX_TOKENS)
    src, tgt = split.src, split.tgt  # all training pairs: batches of every kind of length
    results = {}
    for label, model_config, train_config in (("peer", PEER_MODEL, peer_training(1, 0)),
                                              ("default", ModelConfig(), TrainConfig())):
        order = token_batches([len(s) for s in src], [len(t) for t in tgt], train_config.batch_tokens,
                              train_config.seed, 1)[:batches]
        contenders = {}
        for name, package in (("base", "seq2seq_base"), ("this", "seq2seq")):
            config = module(package, "config").ModelConfig(**dataclasses.asdict(model_config))
            torch.manual_seed(train_config.seed)
            model = model_builder(package)(config, src_tok.vocab_size, tgt_tok.vocab_size).train()
            # a constant 1e-3 (the peer's rate): the default's 0.003 without its warm-up sends a model into
            # slow denormal arithmetic, which would time the numbers, not the code
            contenders[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3, fused=True),
                                importlib.import_module(f"{package}.training.step").batch_loss)
        same_start = all(torch.equal(a, b) for a, b in zip(contenders["base"][0].state_dict().values(),
                                                           contenders["this"][0].state_dict().values()))
        batches_ = [make_batch([src[j] for j in indices], [tgt[j] for j in indices]) for indices in order]
        seconds = steps_in_turns(contenders, batches_, train_config.label_smoothing, train_config.clip_norm)
        results[label] = {"seconds": seconds, "batches": len(order), "same_initial_weights": same_start}
        print(f"  training steps, {label} configuration: base {seconds['base']:.2f} s, this {seconds['this']:.2f} s",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    parser.add_argument("--bundle", type=Path, action="append", default=[], help="a trained en->de model bundle")
    parser.add_argument("--export", type=Path, action="append", default=[],
                        help="an exported model folder (with --in-process): decoded under ONNX Runtime")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--in-process", action="store_true", help="time decoding in one process (see above)")
    parser.add_argument("--train-steps", type=int, default=0, metavar="N",
                        help="also time N training steps of the peer and the default configurations, both "
                             "revisions in turns batch by batch in one process")
    args = parser.parse_args()
    work = args.work.resolve()
    phase_data(work)
    trees = {"base": worktree(work, args.base), "this": ROOT}
    out = work / "code_compare"
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"base": args.base, "training": {}, "decoding": {}}
    if not args.skip_training:
        speeds: dict[str, list[float]] = {name: [] for name in trees}
        for repeat in range(args.repeats):
            for name, tree in trees.items():
                record = out / f"speed-{name}-{repeat}.json"
                run(tree, "speed", str(work), str(SPEED_PAIRS), str(record))
                speeds[name].append(json.loads(record.read_text())["tokens_per_second"])
        results["training"] = speeds
    if args.train_steps:
        results["training_steps"] = train_steps_in_process(trees["base"], work, args.train_steps)
    if args.in_process:
        results["decoding"] = decode_in_process(trees["base"], work, args.bundle, args.export, args.repeats)
    for bundle in [] if args.in_process else args.bundle:
        for beam in (1, 5):
            key = f"{bundle.resolve().parent.parent.name}/{bundle.name} beam {beam}"
            seconds: dict[str, list[float]] = {name: [] for name in trees}
            hyps: dict[str, str] = {}
            for repeat in range(args.repeats):
                for name, tree in trees.items():
                    hyp, record = out / f"hyp-{name}.txt", out / f"decode-{name}.json"
                    run(tree, "decode", str(work), str(bundle.resolve()), str(beam), str(hyp), str(record))
                    seconds[name].append(json.loads(record.read_text())["decode_seconds"])
                    hyps[name] = hyp.read_text(encoding="utf-8")
            base_lines, this_lines = hyps["base"].splitlines(), hyps["this"].splitlines()
            same = sum(a == b for a, b in zip(base_lines, this_lines))
            results["decoding"][key] = {"seconds": seconds, "identical": same, "sentences": len(base_lines)}
    (work / "code_compare.json").write_text(json.dumps(results, indent=2))
    print(f"| this code vs {args.base} (medians of {args.repeats}, alternating) | base | this | this / base |")
    print("|---|---|---|---|")
    if results["training"]:
        base, this = (statistics.median(results["training"][n]) for n in ("base", "this"))
        print(f"| training, target tokens/s (peer model, 5,000 pairs) | {base:,.0f} | {this:,.0f} | {this / base:.3f} |")
    for label, record in results.get("training_steps", {}).items():
        base, this = record["seconds"]["base"], record["seconds"]["this"]
        print(f"| training steps, {label} configuration, {record['batches']} batches in turns, seconds | {base:.2f} | "
              f"{this:.2f} | {base / this:.3f} (speed) |")
    for key, record in results["decoding"].items():
        base, this = (statistics.median(record["seconds"][n]) for n in ("base", "this"))
        same = f"identical outputs: {record['identical']}/{record['sentences']}"
        if "identical_text" in record and record["identical_text"] != record["identical"]:
            same += (f"; identical text {record['identical_text']}, scores within "
                     f"{record['largest_score_difference']:.1e}")
        print(f"| decoding {key}, seconds ({same}) | {base:.2f} | {this:.2f} | {base / this:.3f} (speed) |")


if __name__ == "__main__":
    main()
