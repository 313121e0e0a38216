"""What decoding a test set writes: the translations and what comes with them.

``hypotheses.txt`` (the best translation of each sentence, one per line), ``alignments.txt`` (its
word alignment from attention, Pharaoh format, one line per sentence; attention models only),
``nbest.tsv`` (with n-best > 1: line, rank, score, log_prob, translation), ``attention/NN.png``
(heatmaps of the first sentences), ``settings.json`` (the decode params used) and any further text
files a stage adds (the ensemble stage: its smaller ensembles' translations).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..core.atomic import atomic_dir
from ..reporting.figures import attention_heatmap
from ..runtime.alignment import pharaoh
from ..runtime.text import TextTranslator, Translation, nbest_table


def decode_test_set(translator: TextTranslator, name: str, sources: Sequence[str], folder: str | Path,
                    settings: dict[str, Any], nbest: int, examples: int,
                    more_files: dict[str, str] | None = None) -> list[str]:
    """Translate test set ``name`` (with attention where a model attends: for the alignments and
    heatmaps), write ``folder`` (:func:`write_decoded`) and return the best translation of each sentence."""
    results = translator.translate_details(list(sources), attention=translator.attends)
    write_decoded(folder, name, results, settings, nbest, examples, more_files)
    return [hyps[0].text for hyps in results]


def write_decoded(folder: str | Path, name: str, results: list[list[Translation]], settings: dict[str, Any],
                  nbest: int, examples: int, more_files: dict[str, str] | None = None) -> None:
    """Write ``folder`` (replacing it whole, or leaving the old one if anything fails), with
    ``more_files`` (file name: text) beside the rest."""
    with atomic_dir(folder) as out:
        for file_name, text in (more_files or {}).items():
            (out / file_name).write_text(text, encoding="utf-8")
        (out / "hypotheses.txt").write_text("".join(hyps[0].text + "\n" for hyps in results), encoding="utf-8")
        if any(hyps[0].attention is not None for hyps in results):
            (out / "alignments.txt").write_text("".join(pharaoh(hyps[0].alignment()) + "\n" for hyps in results),
                                                encoding="utf-8")
        if nbest > 1:
            (out / "nbest.tsv").write_text(nbest_table(results), encoding="utf-8")
        for n, hyps in enumerate(results[:examples], start=1):
            best = hyps[0]
            if best.attention is not None:
                (out / "attention").mkdir(exist_ok=True)
                attention_heatmap(out / "attention" / f"{n:02d}.png", best.source_pieces, best.target_pieces,
                                  best.attention.numpy() if hasattr(best.attention, "numpy") else best.attention,
                                  title=f"{name} sentence {n}: {best.text}"[:120])
        (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def search_label(search: Any) -> str:
    """``beam 5``, ``sampling (temperature 0.8, ...)``, with the n-best if any: how a stage searched."""
    how = (f"sampling (temperature {search.temperature}, top-k {search.top_k}, top-p {search.top_p}, seed "
           f"{search.seed})" if search.sampling else f"beam {search.beam}")
    return how + (f", {search.nbest}-best" if search.nbest > 1 else "")
