"""Did the model's tanh-through-sigmoid tricks earn their place? (docs/performance.md, "Tricks that had to earn their place")

    python bench/trick_probe.py --tree WORKTREE_OF_a65dd17 --bundle LUONG_BUNDLE --bundle BAHDANAU_BUNDLE

Runs against the revision before the tricks moved out of the model (a65dd17, in a git worktree):
decodes Multi30k test_2016_flickr (batch 64, greedy and beam 5) with the tricks as they were, and
with each patched out at run time, alternating in one process, 3 runs each; prints the medians'
ratio and how many outputs are identical. Variants: ``trick`` (as it was), ``plain`` (torch.tanh
everywhere, Bahdanau keys U s_j and v^T tanh), and ``alpha`` (Bahdanau scores through sigmoid on
plain keys, 2Wq + 2Us formed by one torch.add(alpha=2): what seq2seq/fast/additive_scores.py does).
"""
from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "multi30k" / "test_2016_flickr.en.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, action="append", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    import seq2seq.model as M  # the old flat layout
    import seq2seq.recurrence as R
    from seq2seq.translator import Translator

    sources = gzip.open(TEST, "rt", encoding="utf-8").read().splitlines()
    original = {"model_tanh": M.tanh, "cell_tanh": R.tanh, "keys": M.BahdanauAttention.keys,
                "forward": M.BahdanauAttention.forward}

    def plain_keys(self, states):
        return self.key_proj(states)

    def plain_forward(self, queries, memory):
        projected = memory.by_entry(self.query_proj(queries))
        energy = torch.tanh(projected.unsqueeze(2) + memory.keys.unsqueeze(1))
        return M._weights(torch.matmul(energy, self.energy.weight.squeeze(0)), memory, queries)

    def alpha_forward(self, queries, memory):
        projected = memory.by_entry(self.query_proj(queries) * 2)
        gates = torch.add(projected.unsqueeze(2), memory.keys.unsqueeze(1), alpha=2).sigmoid_()
        v = self.energy.weight.squeeze(0)
        return M._weights(torch.matmul(gates, v * 2) - v.sum(), memory, queries)

    variants = {
        "trick": (original["model_tanh"], original["cell_tanh"], original["keys"], original["forward"]),
        "plain": (torch.tanh, torch.tanh, plain_keys, plain_forward),
        "alpha": (original["model_tanh"], original["cell_tanh"], plain_keys, alpha_forward),
    }
    for bundle in args.bundle:
        translator = Translator.load(bundle, device="cpu")
        for beam in (1, 5):
            seconds = {name: [] for name in variants}
            outputs = {}
            for _ in range(args.repeats):
                for name, (model_tanh, cell_tanh, keys, forward) in variants.items():
                    M.tanh, R.tanh, M.BahdanauAttention.keys, M.BahdanauAttention.forward = (
                        model_tanh, cell_tanh, keys, forward)
                    started = time.perf_counter()
                    outputs[name] = translator.translate(sources, beam=beam, batch_size=64)
                    seconds[name].append(time.perf_counter() - started)
            base = statistics.median(seconds["trick"])
            for name in variants:
                same = sum(a == b for a, b in zip(outputs[name], outputs["trick"]))
                print(f"{bundle} beam {beam} {name}: {statistics.median(seconds[name]):.2f} s, "
                      f"{statistics.median(seconds[name]) / base:.3f} of trick; identical {same}/{len(sources)}",
                      flush=True)


if __name__ == "__main__":
    main()
