"""This code against an earlier revision on the alternating benchmark: training and decoding speed, same outputs.

    python bench/code_compare.py --base REV [--repeats 3] [--work bench/work] [--bundle DIR ...]

Both revisions run ``bench/ours_multi30k.py`` from their own tree (the earlier one from a git
worktree at WORK/base-REV), alternating, ``--repeats`` times each, in this one invocation:

* training: one epoch of the Joey NMT peer configuration (LSTM, Bahdanau attention, input
  feeding) on 5,000 sampled Multi30k pairs (the ``speed`` phase of bench/joeynmt_compare.py);
* decoding: test_2016_flickr with each ``--bundle`` (trained Multi30k en->de models), greedy and
  beam 5: decode seconds, and whether both revisions print exactly the same translations.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    parser.add_argument("--bundle", type=Path, action="append", default=[], help="a trained en->de model bundle")
    parser.add_argument("--skip-training", action="store_true")
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
    for bundle in args.bundle:
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
    for key, record in results["decoding"].items():
        base, this = (statistics.median(record["seconds"][n]) for n in ("base", "this"))
        print(f"| decoding {key}, seconds (identical outputs: {record['identical']}/{record['sentences']}) | "
              f"{base:.2f} | {this:.2f} | {base / this:.3f} (speed) |")


if __name__ == "__main__":
    main()
