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
from seq2seq.data.clean import read_split  # noqa: E402
from seq2seq.decoding.torch_backend import TorchBackend  # noqa: E402
from seq2seq.search import algorithms  # noqa: E402
from seq2seq.search.ensemble import Ensemble  # noqa: E402
from seq2seq.search.settings import SearchSettings  # noqa: E402


@torch.inference_mode()
def greedy(models, bundle, sources: list[str]) -> list[str]:
    """Greedy search (the package's) over the ensemble's mean log-probabilities."""
    ids = bundle.src_tokenizer.encode(sources)
    settings = SearchSettings(beam=1, batch_size=64, max_length_ratio=1.5, max_length_extra=10)
    hypotheses = algorithms.translate_ids(Ensemble([TorchBackend(m, "cpu") for m in models]), ids, settings)
    return bundle.tgt_tokenizer.decode([hyps[0].tokens for hyps in hypotheses])


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
        hypotheses = greedy(models, bundle, sources)
        print(f"steps {ensemble}: valid BLEU {sacrebleu.corpus_bleu(hypotheses, [references]).score:.2f}", flush=True)


if __name__ == "__main__":
    main()
