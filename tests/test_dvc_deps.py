"""dvc.yaml lists, for every stage, exactly the package modules the stage's script imports (directly or not),
and every recipe's dvc.yaml is the project's, rebased into the recipe's folder.

A module left out would let DVC skip a stage whose code changed; one too many reruns it for nothing.
``python tools/stage_deps.py`` writes the lists; these tests check them.
"""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import stage_deps  # noqa: E402

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_list_every_imported_module(name):
    stage = STAGES[name].get("do", STAGES[name])  # foreach stages (one per test set) keep theirs under do
    script = stage_deps.stage_script(stage)
    deps = set(stage["deps"])
    assert script in deps
    imported = set(stage_deps.closure(ROOT / script))
    missing = imported - deps
    assert not missing, f"dvc.yaml stage {name}: add {sorted(missing)} to its deps (python tools/stage_deps.py)"
    extra = {d for d in deps if d.startswith("seq2seq/")} - imported
    assert not extra, f"dvc.yaml stage {name}: {sorted(extra)} cannot change its result: drop them from its deps"


def test_closure_follows_relative_imports_and_function_level_imports():
    """The closure sees ``from ..core.config import X``, ``from ..fast import plug_in`` (a package's
    __init__) and imports inside functions; the decode stage reaches the model through them."""
    decode = set(stage_deps.closure(ROOT / "stages" / "decode.py"))
    assert {"seq2seq/model/decoder.py", "seq2seq/fast/__init__.py", "seq2seq/core/config.py"} <= decode
    assert "seq2seq/training/trainer.py" not in decode  # decoding never runs training code
    score = set(stage_deps.closure(ROOT / "stages" / "score.py"))
    assert not any(m.startswith(("seq2seq/model/", "seq2seq/fast/")) for m in score)  # score never loads weights


def test_stage_deps_tool_check_passes():
    check = subprocess.run([sys.executable, str(ROOT / "tools" / "stage_deps.py"), "--check"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr


def test_train_stage_params_are_what_can_change_the_model():
    """Every train key but the reporting ones, the whole model section, the languages the bundle records."""
    from dataclasses import fields

    from seq2seq.core.config import REPORTING_TRAIN_KEYS, TrainConfig

    train_keys = {f"train.{f.name}" for f in fields(TrainConfig) if f.name not in REPORTING_TRAIN_KEYS}
    assert set(STAGES["train"]["params"]) == {"data.src_lang", "data.tgt_lang", "model"} | train_keys
    assert len(STAGES["train"]["params"]) == len(set(STAGES["train"]["params"]))


def test_recipes_run_the_projects_pipeline():
    """recipes/*/dvc.yaml are generated from dvc.yaml; `python recipes/sync.py --check` says if one is stale."""
    recipes = sorted((ROOT / "recipes").glob("*/dvc.yaml"))
    assert recipes, "no recipe found"
    check = subprocess.run([sys.executable, str(ROOT / "recipes" / "sync.py"), "--check"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    for path in recipes:
        recipe = yaml.safe_load(path.read_text())["stages"]
        assert set(recipe) == set(STAGES)
        train = recipe["train"]
        assert train["cmd"] == "PYTHONPATH=../.. " + STAGES["train"]["cmd"]
        assert "../../seq2seq/model/seq2seq.py" in train["deps"] and "data/tokens" in train["deps"]
        assert all((path.parent / dep).exists() for dep in train["deps"] if dep.startswith("../"))
        # a DVC project of its own: the root's `dvc status` and `dvc exp` leave the recipe alone
        assert (path.parent / ".dvc" / "config").is_file() and (path.parent / ".dvcignore").is_file()
