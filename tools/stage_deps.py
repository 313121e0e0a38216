"""Keep each dvc.yaml stage's code dependencies equal to what its script really imports.

    python tools/stage_deps.py          # rewrite the seq2seq/ deps of every stage in dvc.yaml
    python tools/stage_deps.py --check  # exit 1 if one is out of date (the tests run this check)

A stage depends on its script and on every package module the script imports, directly or
through other modules (package ``__init__.py`` files count where something is imported from
them). A module left out would let DVC skip a stage whose code changed; one too many would
rerun it for nothing. After a rewrite, run ``python recipes/sync.py`` for the recipes.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seq2seq"


def module_file(dotted: str) -> Path | None:
    """``seq2seq.core.config`` -> seq2seq/core/config.py (or a package's __init__.py); None outside the package."""
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


def main(argv: list[str]) -> int:
    path = ROOT / "dvc.yaml"
    text = path.read_text(encoding="utf-8")
    new = rewrite(text, expected_deps(yaml.safe_load(text)))
    if "--check" in argv:
        if new != text:
            print("dvc.yaml: stage deps differ from the imports; run `python tools/stage_deps.py`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new, encoding="utf-8")
        print("dvc.yaml: stage deps rewritten; now run `python recipes/sync.py`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
