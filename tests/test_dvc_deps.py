"""dvc.yaml lists, for every stage, exactly the package modules the stage's script imports (directly or not),
and every recipe's dvc.yaml is the project's, rebased into the recipe's folder.

A module left out would let DVC skip a stage whose code changed; one too many reruns it for nothing.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def imported_modules(path: Path) -> set[str]:
    """Package modules (as ``seq2seq/NAME.py``) that one file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .module import x
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import module
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("seq2seq."):
                found.add(node.module.split(".")[1])
            elif node.module == "seq2seq":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("seq2seq."))
    return {f"seq2seq/{name}.py" for name in found if (ROOT / "seq2seq" / f"{name}.py").exists()}


def closure(script: Path) -> set[str]:
    todo, seen = [script], set()
    while todo:
        for module in imported_modules(todo.pop()) - seen:
            seen.add(module)
            todo.append(ROOT / module)
    return seen


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_list_every_imported_module(name):
    stage = STAGES[name].get("do", STAGES[name])  # foreach stages (one per test set) keep theirs under do
    script = stage["cmd"].split("-m ")[1].split()[0].replace(".", "/") + ".py"
    deps = set(stage["deps"])
    assert script in deps
    imported = closure(ROOT / script)
    missing = imported - deps
    assert not missing, f"dvc.yaml stage {name}: add {sorted(missing)} to its deps"
    extra = {d for d in deps if d.startswith("seq2seq/")} - imported
    assert not extra, f"dvc.yaml stage {name}: {sorted(extra)} cannot change its result: drop them from its deps"


def test_train_stage_params_are_what_can_change_the_model():
    """Every train key but the reporting ones, the whole model section, the languages the bundle records."""
    from dataclasses import fields

    from seq2seq.config import REPORTING_TRAIN_KEYS, TrainConfig

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
        assert "../../seq2seq/model.py" in train["deps"] and "data/tokens" in train["deps"]
        assert all((path.parent / dep).exists() for dep in train["deps"] if dep.startswith("../"))
        # a DVC project of its own: the root's `dvc status` and `dvc exp` leave the recipe alone
        assert (path.parent / ".dvc" / "config").is_file() and (path.parent / ".dvcignore").is_file()
