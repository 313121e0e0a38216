"""dvc.yaml lists, for every stage, exactly the package modules the stage's script imports (directly or not)
and the local files params.yaml names; every recipe's dvc.yaml is the project's, rebased into the recipe's
folder, with the local files of the recipe's params.

A module or file left out would let DVC skip a stage whose input changed; one too many reruns it for
nothing. ``python tools/stage_deps.py`` writes the lists; these tests check them.
"""
import json
import shutil
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
    """The closure sees ``from ..params.config import X``, ``from ..fast import plug_in`` (a package's
    __init__) and imports inside functions; the decode stage reaches the model through them."""
    decode = set(stage_deps.closure(ROOT / "stages" / "decode.py"))
    assert {"seq2seq/model/decoder.py", "seq2seq/fast/__init__.py", "seq2seq/params/config.py"} <= decode
    assert "seq2seq/training/trainer.py" not in decode  # decoding never runs training code
    score = set(stage_deps.closure(ROOT / "stages" / "score.py"))
    assert not any(m.startswith(("seq2seq/model/", "seq2seq/fast/")) for m in score)  # score never loads weights


def test_stage_deps_tool_check_passes():
    check = subprocess.run([sys.executable, str(ROOT / "tools" / "stage_deps.py"), "--check"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr


def test_a_default_changed_in_its_declaration_reaches_params_yaml_the_recipes_and_the_stages(tmp_path):
    """Change one default where it is declared (seq2seq/params/config.py), in a copy of the project:
    `--check` then fails (params.yaml and the recipes' params disagree with it), `--params` writes them,
    and the stages (load_params) and every recipe read the new value; a tuned params.yaml is left alone
    without `--params`."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        (project / name).write_bytes((ROOT / name).read_bytes())
    for folder in ("stages", "seq2seq", "tools", "corpus", "recipes"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__", "data",
                                                                                       "metrics", "mlruns"))
    config = project / "seq2seq" / "params" / "config.py"
    declared = 'clip_norm: float = param(1.0, "clip the gradient'
    assert config.read_text().count(declared) == 1
    config.write_text(config.read_text().replace(declared, declared.replace("1.0", "2.5")))
    tool = [sys.executable, str(project / "tools" / "stage_deps.py")]
    check = subprocess.run(tool + ["--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "params.yaml" in check.stderr and "recipes/" in check.stderr
    tuned = project / "params.yaml"
    subprocess.run(tool, check=True, capture_output=True)  # without --params: params.yaml stays
    assert tuned.read_bytes() == (ROOT / "params.yaml").read_bytes()
    subprocess.run(tool + ["--params"], check=True, capture_output=True)
    assert subprocess.run(tool + ["--check"], capture_output=True).returncode == 0
    assert "  clip_norm: 2.5 " in tuned.read_text()
    reads = ("import sys; from seq2seq.params.config import load_params; "
             "print(load_params(sys.argv[1]).train.clip_norm)")
    folders = [project] + sorted(p.parent for p in (project / "recipes").glob("*/recipe.yaml"))
    assert len(folders) > 1
    for folder in folders:
        out = subprocess.run([sys.executable, "-c", reads, str(folder / "params.yaml")], cwd=project, check=True,
                             capture_output=True, text=True).stdout
        assert out.strip() == "2.5", folder


def test_train_stage_params_are_what_can_change_the_model():
    """Every train key but the reporting ones and the list of more seeds, the whole model section, the
    languages the bundle records; a seed's stage the same but train.seed (its seed is its own)."""
    from dataclasses import fields

    from seq2seq.params.config import OTHER_MODELS_KEYS, REPORTING_TRAIN_KEYS, TrainConfig

    train_keys = {f"train.{f.name}" for f in fields(TrainConfig)
                  if f.name not in REPORTING_TRAIN_KEYS + OTHER_MODELS_KEYS}
    assert set(STAGES["train"]["params"]) == {"data.src_lang", "data.tgt_lang", "model"} | train_keys
    assert len(STAGES["train"]["params"]) == len(set(STAGES["train"]["params"]))
    assert set(STAGES["train_seed"]["do"]["params"]) == set(STAGES["train"]["params"]) - {"train.seed"}


def test_recipes_run_the_projects_pipeline():
    """recipes/*/dvc.yaml are generated from dvc.yaml; `python tools/stage_deps.py --check` says if one is stale."""
    recipes = sorted((ROOT / "recipes").glob("*/dvc.yaml"))
    assert recipes, "no recipe found"
    for path in recipes:
        recipe = yaml.safe_load(path.read_text())["stages"]
        assert set(recipe) == set(STAGES)
        train = recipe["train"]
        assert train["cmd"] == "PYTHONPATH=../.. " + STAGES["train"]["cmd"]
        assert "../../seq2seq/model/seq2seq.py" in train["deps"] and "data/tokens" in train["deps"]
        assert all((path.parent / dep).exists() for dep in train["deps"] if dep.startswith("../"))
        # a DVC project of its own: the root's `dvc status` and `dvc exp` leave the recipe alone
        assert (path.parent / ".dvc" / "config").is_file() and (path.parent / ".dvcignore").is_file()


def test_project_and_recipes_declare_the_local_files_their_params_name(tmp_path):
    """The generator declares each local file params.yaml names as a dep of the stage that reads it, in
    the project and in a recipe alike, as DVC itself resolves the pipeline (the vars entry merged into
    tests.NAME fills testset@NAME's slots); URL files (pinned by sha256) and the random split add none."""
    from dvc.repo import Repo

    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        (project / name).write_bytes((ROOT / name).read_bytes())
    for folder in ("stages", "seq2seq", "tools", "corpus"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    recipe = project / "recipes" / "local"
    recipe.mkdir(parents=True)
    recipe_params = {"data": {"source": "local", "path": "/abs/corpus.tsv",
                              "valid": {"path": "held/valid.en", "target_path": "held/valid.de"}}}
    recipe_params["tests"] = {"one_file": {"path": "held/test.tsv"},
                              "two_files": {"path": "held/test.en.gz", "target_path": "held/test.de.gz"},
                              "source_url": {"path": "https://example.org/t.en", "sha256": "a" * 64,
                                             "target_path": "held/t.de"},
                              "urls": {"path": "https://example.org/t.tsv", "sha256": "b" * 64},
                              "split": {"random_split": True}}
    (recipe / "recipe.yaml").write_text(yaml.safe_dump(recipe_params))
    for cmd in (["git", "init", "-q"], [sys.executable, "tools/stage_deps.py"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--subdir"], cwd=recipe, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=project, check=True)

    def deps(folder: Path, stage: str) -> set[str]:
        with Repo(str(folder)) as repo:
            (found,) = repo.stage.collect(f"{folder / 'dvc.yaml'}:{stage}")
            return {str(Path(d.def_path)) for d in found.deps}

    local = {"/abs/corpus.tsv", "held/valid.en", "held/valid.de"}
    assert local <= deps(recipe, "download") and not local & deps(project, "download")
    expected = {"one_file": {"held/test.tsv"}, "two_files": {"held/test.en.gz", "held/test.de.gz"},
                "source_url": {"held/t.de"}, "urls": set(), "split": set()}
    for name, files in expected.items():
        assert {d for d in deps(recipe, f"testset@{name}") if d.startswith(("held/", "/"))} == files, name
    assert {d for d in deps(project, "testset@test") if not d.startswith(("stages/", "seq2seq/", "params"))} == {
        "data/clean"}
    check = subprocess.run([sys.executable, "tools/stage_deps.py", "--check"], cwd=project, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    recipe_params["tests"]["two_files"]["target_path"] = "held/other.de.gz"  # recipe changed, params and dvc.yaml not
    (recipe / "recipe.yaml").write_text(yaml.safe_dump(recipe_params))
    check = subprocess.run([sys.executable, "tools/stage_deps.py", "--check"], cwd=project, capture_output=True,
                           text=True)
    assert check.returncode == 1 and "recipes/local/params.yaml" in check.stderr
    assert "recipes/local/dvc.yaml" in check.stderr


def test_a_recipe_holds_only_what_it_changes_and_gets_every_other_default():
    """Each recipe's params.yaml is the declared defaults (as params.yaml holds them) with its recipe.yaml
    laid over it: a changed default reaches every recipe that does not change it, one every recipe changes
    does not, and a recipe.yaml that repeats a default is refused."""
    from seq2seq.core.errors import Seq2SeqError

    project = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert stage_deps.recipes(), "no recipe found"
    for folder in stage_deps.recipes():
        changes = yaml.safe_load((folder / "recipe.yaml").read_text())
        written = yaml.safe_load((folder / "params.yaml").read_text())
        assert written == stage_deps.recipe_params(folder, project)  # what DVC reads is the overlay
        assert len(yaml.safe_dump(changes).splitlines()) < len(yaml.safe_dump(written).splitlines()) / 2
        edited = json.loads(json.dumps(project))
        edited["train"]["clip_norm"] = 2.5  # a default the recipes do not change
        changed = next(iter(changes["train"]))  # one this recipe changes
        edited["train"][changed] = 99
        overlaid = stage_deps.recipe_params(folder, edited)
        assert overlaid["train"]["clip_norm"] == 2.5 and overlaid["train"][changed] == changes["train"][changed]
    with pytest.raises(Seq2SeqError, match="train.clip_norm: .*is the declared default already"):
        stage_deps.overlaid(project, {"train": {"clip_norm": project["train"]["clip_norm"]}}, "")
