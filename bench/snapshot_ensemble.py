"""Would an ensemble of one run's snapshots help? Greedy decoding of the val set with the mean of the
snapshots' log-probabilities at every step (docs/benchmarks.md, "What was tried for Multi30k").

    python bench/snapshot_ensemble.py RECIPE_DIR STEP[,STEP...] [STEP[,STEP...] ...]

RECIPE_DIR is a recipe run with ``train.snapshots: true`` (data/checkpoints/train/snapshots/,
data/model, data/clean/valid.tsv); each argument after it is one ensemble, by training step.
Prints sacreBLEU (cased, 13a) of each on the valid split, as training's validation measures it.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import sacrebleu
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seq2seq.bundle.bundle import load_bundle  # noqa: E402
from seq2seq.data.batching import source_tensor  # noqa: E402
from seq2seq.data.clean import read_split  # noqa: E402
from seq2seq.data.subwords import BOS_ID, EOS_ID  # noqa: E402
from seq2seq.decoding.torch_backend import max_lengths  # noqa: E402


@torch.inference_mode()
def greedy(models, bundle, sources: list[str]) -> list[str]:
    src, lengths = source_tensor(bundle.src_tokenizer.encode(sources))
    limit = max_lengths(lengths, 1.5, 10)
    encoded = [model.encode(src, lengths) for model in models]
    memories, states = [m for m, _ in encoded], [s for _, s in encoded]
    rows = src.size(0)
    out: list[list[int]] = [[] for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool)
    tokens = torch.full((rows, 1), BOS_ID)
    for step in range(int(limit.max())):
        log_probs = 0
        for i, model in enumerate(models):
            features, states[i], _ = model.decoder(tokens, states[i], memories[i])
            log_probs = log_probs + torch.log_softmax(model.generator(features[:, -1]).float(), -1)
        chosen = log_probs.argmax(-1)
        for row in range(rows):
            if not done[row] and step < limit[row]:
                if chosen[row] == EOS_ID:
                    done[row] = True
                else:
                    out[row].append(int(chosen[row]))
        if bool(done.all()):
            break
        tokens = chosen.unsqueeze(1)
    return bundle.tgt_tokenizer.decode(out)


def main() -> None:
    recipe = Path(sys.argv[1])
    bundle = load_bundle(recipe / "data" / "model")
    valid = read_split(recipe / "data" / "clean" / "valid.tsv")
    sources, references = list(valid["source"]), list(valid["target"])
    for ensemble in sys.argv[2:]:
        models = []
        for step in (int(s) for s in ensemble.split(",")):
            model = copy.deepcopy(bundle.model)
            snapshot = recipe / "data" / "checkpoints" / "train" / "snapshots" / f"step-{step:07d}.pt"
            model.load_state_dict(torch.load(snapshot, map_location="cpu", weights_only=True)["model"])
            models.append(model.eval())
        hypotheses = []
        for start in range(0, len(sources), 64):
            hypotheses += greedy(models, bundle, sources[start:start + 64])
        print(f"steps {ensemble}: valid BLEU {sacrebleu.corpus_bleu(hypotheses, [references]).score:.2f}", flush=True)


if __name__ == "__main__":
    main()
