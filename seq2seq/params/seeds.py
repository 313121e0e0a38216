"""The models a pipeline trains: the first from ``train.seed`` (stage ``train``), and one more from each
seed of ``train.more_seeds`` (stages ``train_seed@N``), trained alike but for the seed, each with its
own bundle, checkpoints, metrics and MLflow training run; where each one's files live."""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ..core.errors import Seq2SeqError
from ..core.stage_outputs import REMAKE, read_output_lines
from .config import Params


@dataclass(frozen=True)
class TrainedModel:
    """One model of the pipeline: its seed and where its files are."""

    seed: int
    bundle: Path  # the model bundle (the train stage's output)
    checkpoints: Path  # where an interrupted training resumes from (outside the stage's outputs)
    summary: Path  # metrics: the training summary (JSON)
    history: Path  # metrics: one row per validation (CSV)
    decoded: Path | None = None  # a seed's own translations of every test set (stage seed_scores@N)
    scores: Path | None = None  # ... and their scores (metrics)

    def training_minutes(self, folder: Path = Path(".")) -> float:
        """Minutes this model trained, validations included, over every interruption and resume (the
        sum of the history's ``seconds``); ``folder``: the project the paths are relative to."""
        return training_minutes(folder / self.history)


def training_minutes(history: Path) -> float:
    """The minutes of a training history (``train_history.csv``: one row per validation, each with
    the seconds of training and validating since the one before), unrounded: sums of them stay exact."""
    rows = csv.DictReader(read_output_lines(history))
    try:
        return sum(float(row["seconds"]) for row in rows) / 60
    except (KeyError, TypeError, ValueError):
        raise Seq2SeqError(f"{history}: no seconds in a row of the training history; {REMAKE}") from None


def first_model(params: Params) -> TrainedModel:
    return TrainedModel(params.train.seed, Path("data/model"), Path("data/checkpoints/train"),
                        Path("metrics/train.json"), Path("metrics/train_history.csv"))


def seed_model(seed: int) -> TrainedModel:
    return TrainedModel(seed, Path(f"data/seeds/{seed}/model"), Path(f"data/checkpoints/seeds/{seed}"),
                        Path(f"metrics/seeds/{seed}/train.json"), Path(f"metrics/seeds/{seed}/train_history.csv"),
                        Path(f"data/seeds/{seed}/decode"), Path(f"metrics/seeds/{seed}/scores.json"))


def all_models(params: Params) -> list[TrainedModel]:
    """The first model, then one per ``train.more_seeds``, in that order (an ensemble's members)."""
    return [first_model(params)] + [seed_model(s) for s in params.train.more_seeds]


def seed_from_args(params: Params, args: list[str], stage: str) -> int:
    """The seed a per-seed stage was started for (``python -m stages.STAGE N``), one of train.more_seeds."""
    args = [a for a in args if a != "--debug"]
    known = ", ".join(map(str, params.train.more_seeds)) or "none"
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) not in params.train.more_seeds:
        raise Seq2SeqError(f"usage: python -m stages.{stage} N, N one of train.more_seeds in params.yaml ({known})")
    return int(args[0])


def ensemble_stages(params: Params) -> dict[str, dict]:
    """The ensemble stages dvc.yaml runs (tools/stage_deps.py writes them): one per test set where
    train.more_seeds lists seeds (the stage reads which from params.yaml, so changing the seeds
    leaves this as it is), none where it is empty."""
    return {name: {} for name in params.tests} if params.train.more_seeds else {}


def check_ensemble_stages(params: Params, dvc_yaml: Path = Path("dvc.yaml")) -> None:
    """Stop a seed's stage where ``dvc_yaml`` runs no ensemble stage for a test set while
    train.more_seeds lists seeds: its list is written by tools/stage_deps.py, and without one the
    seeds would train (their stages follow params.yaml) but never be scored together."""
    if not params.train.more_seeds or not dvc_yaml.is_file():
        return
    try:
        entries = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")).get("vars") or []
        listed = next((e["ensembles"] for e in entries if isinstance(e, dict) and "ensembles" in e), None) or {}
    except (yaml.YAMLError, AttributeError, TypeError):
        return  # not the pipeline's own file: DVC says what is wrong with it
    missing = [name for name in ensemble_stages(params) if name not in listed]
    if missing:
        raise Seq2SeqError(f"{dvc_yaml}: no ensemble stage for test set {', '.join(missing)} though train.more_seeds "
                           f"lists {', '.join(map(str, params.train.more_seeds))}; run python tools/stage_deps.py "
                           "(it writes them), then dvc repro")


def as_seed(params: Params, seed: int) -> Params:
    """``params`` for the model of ``seed``: train.seed is it, train.more_seeds the group's other seeds."""
    group = [params.train.seed, *params.train.more_seeds]
    return replace(params, train=replace(params.train, seed=seed, more_seeds=tuple(s for s in group if s != seed)))
