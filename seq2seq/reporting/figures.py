"""Pictures for people: attention heatmaps and scores by source length (PNG, via matplotlib).

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot, so no global
state and no display needed) and written atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..core.atomic import atomic_path


def _figure(width: float, height: float):  # -> matplotlib.figure.Figure
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def attention_heatmap(path: Path, source_pieces: Sequence[str], target_pieces: Sequence[str], weights,
                      title: str = "") -> None:
    """One translation's attention: a row per target piece, a column per source piece.

    ``weights``: [len(target_pieces), len(source_pieces)], rows summing to 1.
    """
    figure = _figure(max(4.0, 0.45 * len(source_pieces) + 2), max(3.0, 0.4 * len(target_pieces) + 1.5))
    axes = figure.subplots()
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source_pieces)), list(source_pieces), rotation=90)
    axes.set_yticks(range(len(target_pieces)), list(target_pieces))
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    _save(figure, path)


def scores_by_length_chart(path: Path, rows: Sequence[dict], title: str = "") -> None:
    """BLEU and chrF per source-length bucket (rows from ``scoring.scores_by_length``)."""
    figure = _figure(6.5, 3.8)
    axes = figure.subplots()
    labels = [r["bucket"] for r in rows]
    positions = range(len(rows))
    axes.plot(positions, [r["bleu"] for r in rows], marker="o", label="BLEU")
    axes.plot(positions, [r["chrf"] for r in rows], marker="s", label="chrF")
    axes.set_xticks(list(positions), [f"{label}\n({r['sentences']})" for label, r in zip(labels, rows)])
    axes.set_xlabel("source length in words (sentences)")
    axes.set_ylabel("score")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend()
    if title:
        axes.set_title(title, fontsize=9)
    _save(figure, path)
