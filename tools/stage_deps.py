"""Write each dvc.yaml's deps: the package modules each stage runs, and the local files params.yaml names.

    python tools/stage_deps.py           # rewrite dvc.yaml and every recipe's (recipes/*/dvc.yaml, params.yaml)
    python tools/stage_deps.py --params  # ... and params.yaml from the declared defaults (after changing one)
    python tools/stage_deps.py --check   # exit 1 if one is out of date, params.yaml included (the tests run this)

Code: a stage depends on its script and on every package module the script imports, directly or
through other modules (package ``__init__.py`` files count where something is imported from
them). A module left out would let DVC skip a stage whose code changed; one too many would rerun
it for nothing.

Data: every local file that params.yaml names (``data.path``, ``data.valid.path``,
``tests.NAME.target_path``, ...) is a dep of the stage that reads it, so that editing the file
reruns exactly that stage and what depends on it (``seq2seq.params.pipeline_inputs`` says which
entries; the stages refuse to read a file dvc.yaml does not declare). Run this after adding a test
set or pointing params.yaml at other local files.

Params: each parameter's default and meaning is declared once (seq2seq/params/config.py); the
project's params.yaml is written from the declarations (``--params``; never without it, so that a
tuned params.yaml is not overwritten) and ``--check`` fails where it differs from them.

Recipes: a recipe folder holds recipe.yaml, only the params it changes; this tool writes its
params.yaml (the declared defaults with recipe.yaml laid over it, so a default changed in its
declaration reaches every recipe that does not change it) and its dvc.yaml (the project's
pipeline rebased into its folder, :func:`recipes` explains the layout, with the local files of the
recipe's params).
"""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seq2seq"
sys.path.insert(0, str(ROOT))
from seq2seq.core.errors import Seq2SeqError  # noqa: E402
from seq2seq.params.config import load_params, params_from_dict  # noqa: E402
from seq2seq.params.params_file import render  # noqa: E402
from seq2seq.params.pipeline_inputs import pipeline_inputs  # noqa: E402
from seq2seq.params.seeds import ensemble_stages  # noqa: E402

INPUT_MARK = "  # from params.yaml: "  # ends each download dep line this tool writes for a local file
VARS_COMMENT = """\
# Written from params.yaml by `python tools/stage_deps.py` (rerun it after adding a test set or
# changing its files, or train.more_seeds from or to []): the local files testset@NAME reads, merged
# into tests.NAME, so that DVC reruns exactly that test set's stages when one changes (data/clean
# stands where a test set has no local file: the random split, files pinned by URL and sha256); and
# the ensemble@NAME stages to run (none without train.more_seeds).
"""


def module_file(dotted: str) -> Path | None:
    """``seq2seq.params.config`` -> seq2seq/params/config.py (or a package's __init__.py); None outside the package."""
    if dotted != PACKAGE and not dotted.startswith(PACKAGE + "."):
        return None
    base = ROOT / dotted.replace(".", "/")
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def dotted_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _outside_functions(tree: ast.AST) -> list[ast.AST]:
    """The nodes that run when a module is imported: all but function bodies."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo += [c for c in ast.iter_child_nodes(node) if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return nodes


def imported_files(path: Path, when_imported: bool = False) -> set[Path]:
    """Package modules that one file imports (at any depth of its code, function bodies included;
    ``when_imported``: only those imported as the module itself is imported, not inside functions)."""
    package = dotted_name(path) if path.name == "__init__.py" else dotted_name(path).rpartition(".")[0]
    found: set[Path] = set()

    def add(dotted: str) -> None:
        file = module_file(dotted)
        if file is not None:
            found.add(file)

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in (_outside_functions(tree) if when_imported else ast.walk(tree)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            add(base)
            for alias in node.names:  # `from .pkg import module` imports a module
                add(f"{base}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
    return {f for f in found if f != path and not (f.name == "__init__.py" and f.parent.name == PACKAGE
                                                   and not _has_code(f))}


def _has_code(init: Path) -> bool:
    """Whether a package's __init__.py does more than hold a docstring and constants."""
    return any(isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
               for n in ast.parse(init.read_text(encoding="utf-8")).body)


def closure(script: Path) -> list[str]:
    """Every package module a script runs, as sorted repository paths."""
    todo, seen = [script], set()
    while todo:
        for module in imported_files(todo.pop()) - seen:
            seen.add(module)
            todo.append(module)
    return sorted(str(p.relative_to(ROOT)) for p in seen)


def stage_script(stage: dict) -> str:
    return stage["cmd"].split("-m ")[1].split()[0].replace(".", "/") + ".py"


def expected_deps(pipeline: dict) -> dict[str, list[str]]:
    out = {}
    for name, stage in pipeline["stages"].items():
        stage = stage.get("do", stage)  # foreach stages (one per test set) keep theirs under do
        out[name] = closure(ROOT / stage_script(stage))
    return out


def rewrite(text: str, expected: dict[str, list[str]]) -> str:
    """Replace each stage's block of ``- seq2seq/...`` dep lines (kept where it is) by the expected list."""
    lines, out, stage = text.splitlines(keepends=True), [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        top = re.match(r"^  (\w+):\s*$", line)
        if top:
            stage = top.group(1)
        dep = re.match(r"^(\s*)- (stages/\S+\.py)\s*$", line)
        if dep and stage in expected:
            out.append(line)
            i += 1
            while i < len(lines) and re.match(r"^\s*- seq2seq/", lines[i]):
                i += 1
            out.extend(f"{dep.group(1)}- {module}\n" for module in expected[stage])
            continue
        out.append(line)
        i += 1
    return "".join(out)


def vars_block(tests: dict[str, dict[str, str]], ensembles: dict[str, dict]) -> str:
    entry = {"tests": {name: {"reads": slots} for name, slots in tests.items()}, "ensembles": ensembles}
    return VARS_COMMENT + yaml.safe_dump({"vars": [entry]}, sort_keys=False, width=120)


def yaml_scalar(path: str) -> str:
    """``path`` as a YAML list item reads it back: plain where it can be, else double-quoted."""
    return path if re.fullmatch(r"[\w./~+@-]+", path) and not path.startswith(("-", "~", "@")) else json.dumps(path)


def rewrite_inputs(text: str, inputs: dict, ensemble_stages: dict[str, dict]) -> str:
    """Write the local files of ``inputs`` (:func:`seq2seq.params.pipeline_inputs.pipeline_inputs`) into
    a dvc.yaml's text: the download stage's dep lines marked as this tool's, and the vars block (with
    the :func:`seq2seq.params.seeds.ensemble_stages` to run)."""
    head, sep, body = text.partition("\nstages:\n")
    head = (head + "\n").replace(VARS_COMMENT, "")
    head = re.sub(r"(?ms)^vars:\n(?:[ -].*\n)*", "", head).rstrip("\n") + "\n"
    lines = [line for line in body.splitlines(keepends=True) if INPUT_MARK not in line]
    out, stage, in_deps = [], None, False
    for n, line in enumerate(lines):
        top = re.match(r"^  (\w+):\s*$", line)
        if top:
            stage = top.group(1)
        out.append(line)
        in_deps = stage == "download" and (line.strip() == "deps:" or (in_deps and line.lstrip().startswith("- ")))
        following = lines[n + 1] if n + 1 < len(lines) else ""
        if in_deps and line.lstrip().startswith("- ") and not following.lstrip().startswith("- "):
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}- {yaml_scalar(path)}{INPUT_MARK}local file\n" for path in inputs["download"]]
    return head + vars_block(inputs["tests"], ensemble_stages) + sep + "".join(out)


RECIPE_HEADER = ("# Generated from the project's dvc.yaml and this folder's params.yaml by\n"
                 "# `python tools/stage_deps.py`: edit those, then rerun it. The stages are the project's, run in\n"
                 "# this folder.\n")
CODE = ("stages/", "seq2seq/")


def rebase(path: str, up: str) -> str:
    return up + path if path.startswith(CODE) or path == "corpus" else path


def recipe_stage(stage: dict, up: str) -> dict:
    if "do" in stage:
        return {**stage, "do": recipe_stage(stage["do"], up)}
    out = dict(stage)
    out["cmd"] = f"PYTHONPATH={up.rstrip('/')} {stage['cmd']}"
    out["deps"] = [rebase(dep, up) for dep in stage.get("deps", [])]
    return out


RECIPE_FILE = "recipe.yaml"  # what a recipe changes on top of the project's params.yaml
RECIPE_PARAMS_HEADER = """\
# Written by `python tools/stage_deps.py` from the declared defaults (../../params.yaml shows them, each
# with its meaning) and recipe.yaml (what this recipe changes: edit that, then rerun the tool). DVC reads this file.
"""


def overlaid(base: Any, changes: Any, where: str) -> Any:
    """``base`` (the declared defaults, as params.yaml holds them) with ``changes`` (a recipe.yaml) laid over it: sections and
    mappings merge key by key, anything else (a value, the ``tests`` mapping) is replaced. A change
    that equals what it replaces is refused: a recipe holds only what it changes."""
    if isinstance(base, dict) and isinstance(changes, dict) and where != "tests":
        merged = dict(base)
        for key, value in changes.items():
            merged[key] = overlaid(base.get(key), value, f"{where}.{key}" if where else key) if key in base else value
        return merged
    if changes == base:
        raise Seq2SeqError(f"{RECIPE_FILE}: {where}: {changes!r} is the declared default already; "
                           "remove it (a recipe holds only what it changes)")
    return changes


def recipe_params(folder: Path, project: dict) -> dict:
    """A recipe's whole params: the declared defaults ``project`` with its recipe.yaml laid over it."""
    path = folder / RECIPE_FILE
    changes = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return overlaid(project, changes, "")
    except Seq2SeqError as err:
        raise Seq2SeqError(f"{path.relative_to(ROOT)}: {str(err).removeprefix(RECIPE_FILE + ': ')}") from None


def recipes() -> list[Path]:
    """The benchmark recipes: folders under recipes/ with a recipe.yaml (their params.yaml is written from it).

    A recipe is a DVC project of its own (``dvc init --subdir``), so the root's `dvc status`,
    `dvc repro` and `dvc exp` leave it alone. Its pipeline is the project's with the code paths
    (stages/, seq2seq/, corpus) made relative to its folder and the stage commands told where the
    stage scripts are (PYTHONPATH), so `cd recipes/NAME && dvc repro` (what `make recipe NAME=...`
    runs) runs the same code and writes data/, metrics/ and dvc.lock inside recipes/NAME/."""
    return sorted(p.parent for p in (ROOT / "recipes").glob(f"*/{RECIPE_FILE}"))


def recipe_pipeline(folder: Path, project_text: str, params: dict) -> str:
    """A recipe's dvc.yaml: the project's stages (``project_text``, code deps written) rebased into
    ``folder``, with the local files of the recipe's ``params``."""
    neutral = yaml.safe_load(rewrite_inputs(project_text, {"download": [], "tests": {}}, {}))
    neutral.pop("vars", None)
    up = "../" * len(folder.resolve().relative_to(ROOT).parts)
    neutral["stages"] = {name: recipe_stage(stage, up) for name, stage in neutral["stages"].items()}
    text = RECIPE_HEADER + yaml.safe_dump(neutral, sort_keys=False, allow_unicode=True, width=120)
    recipe = params_from_dict(params, str(folder / "params.yaml"))
    return rewrite_inputs(text, pipeline_inputs(recipe), ensemble_stages(recipe))


def pipelines() -> dict[Path, str]:
    """Every written file as it should read: params.yaml (the declared defaults), the project's dvc.yaml,
    then each recipe's params.yaml and dvc.yaml."""
    defaults = render()
    text = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    code_written = rewrite(text, expected_deps(yaml.safe_load(text)))
    params = load_params(ROOT / "params.yaml")
    wanted = {ROOT / "params.yaml": defaults,
              ROOT / "dvc.yaml": rewrite_inputs(code_written, pipeline_inputs(params), ensemble_stages(params))}
    project = yaml.safe_load(defaults)
    for folder in recipes():
        params = recipe_params(folder, project)
        wanted[folder / "params.yaml"] = RECIPE_PARAMS_HEADER + yaml.safe_dump(params, sort_keys=False,
                                                                               allow_unicode=True, width=120)
        wanted[folder / "dvc.yaml"] = recipe_pipeline(folder, code_written, params)
    return wanted


def main(argv: list[str]) -> int:
    try:
        wanted = pipelines()
    except Seq2SeqError as err:
        print(f"error: stage_deps: {err}", file=sys.stderr)
        return 1
    stale = [path for path, text in wanted.items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            print(f"{names}: out of date (deps differ from the stages' imports or params.yaml's local files, "
                  "params.yaml or a recipe's params from the declared defaults and its recipe.yaml); run "
                  "`python tools/stage_deps.py --params`", file=sys.stderr)
            return 1
        return 0
    for path in stale:
        if path == ROOT / "params.yaml" and "--params" not in argv:
            print("params.yaml differs from the declared defaults (tuned?): left as it is; "
                  "`--params` writes the defaults")
            continue
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
