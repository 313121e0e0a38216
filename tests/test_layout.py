"""The package's layout is its architecture: one subpackage per concern, in layers.

Each subpackage imports only from itself and from layers below it (``LAYERS``, lowest first), so
no chain of imports can come back to where it started: there is no cycle, and no exception list.
core (errors, atomic writes, devices, token ids) <- search (greedy, sampling and beam search over a
backend; torch-free) <- params (params.yaml as typed configs) <- data <- reporting <- model (the
reference math) <- fast (its faster variants) <- runtime (an exported model, torch-free) <- bundle (the
saved model) <- decoding (the PyTorch backend and translator) <- training <- export <- tracking.
"""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seq2seq"
sys.path.insert(0, str(ROOT / "tools"))
import stage_deps  # noqa: E402

LAYERS = ["core", "search", "params", "data", "reporting", "model", "fast", "runtime", "bundle", "decoding",
          "training", "export", "tracking"]
ALLOWED = {  # subpackage -> the lower subpackages its modules may import (besides itself)
    "core": set(),
    "search": {"core"},
    "params": {"core", "search"},
    "data": {"core", "params"},
    "reporting": {"core", "params"},
    "model": {"core", "params"},
    "fast": {"core", "params", "model"},
    "runtime": {"core", "search", "data"},  # data: the tokenizer
    "bundle": {"core", "params", "data", "model", "fast", "runtime"},  # runtime: an exported folder's files
    "decoding": {"core", "search", "data", "reporting", "model", "fast", "runtime", "bundle"},  # runtime: text API,
    # exports; reporting: the attention heatmaps of a decoded test set
    "training": {"core", "search", "params", "data", "model", "fast", "bundle", "decoding", "reporting"},
    "export": {"core", "data", "model", "fast", "bundle", "runtime"},
    "tracking": {"core", "search", "params", "training", "decoding", "runtime", "tracking"},
}
# What an exported model needs to translate, and everything it imports from the package, never imports torch.
TORCH_FREE = ("seq2seq/cli.py", "seq2seq/runtime/translator.py", "seq2seq/bundle/locate.py",
              "seq2seq/decoding/load.py", "seq2seq/tracking/pyfunc_model.py", "seq2seq/search/algorithms.py")


def test_the_layers_have_no_cycle():
    """Every subpackage imports only layers below it, so the rules themselves admit no cycle."""
    assert sorted(LAYERS) == sorted(ALLOWED)
    for name, below in ALLOWED.items():
        higher = [b for b in below - {name} if LAYERS.index(b) >= LAYERS.index(name)]
        assert not higher, f"{name}/ may not import {higher}: they are not below it in LAYERS"


def subpackage(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


PROBE = "_layout_probe"  # the modules the tests below write for a moment, to show a rule can fail


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.stem != PROBE)


def test_every_module_lives_in_a_subpackage():
    loose = [p.name for p in modules() if subpackage(p) is None and p.name not in ("__init__.py", "cli.py")]
    assert not loose, f"seq2seq/{loose}: put each module in the subpackage of its concern"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(ALLOWED)


@pytest.mark.parametrize("path", [p for p in modules() if subpackage(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_the_allowed_way(path):
    own = subpackage(path)
    for target in stage_deps.imported_files(path):
        other = subpackage(target)
        assert other in ALLOWED[own] | {own}, f"{path.relative_to(ROOT)} imports {target.relative_to(ROOT)}: " \
                                              f"{own}/ may import only {sorted(ALLOWED[own])} and itself"


def test_the_model_never_reaches_a_fast_path():
    for path in (PACKAGE / "model").glob("*.py"):
        reached = stage_deps.closure(path)
        assert not [m for m in reached if m.startswith("seq2seq/fast/")], f"{path.name} reaches {reached}"


def test_the_model_imports_no_sentencepiece():
    """The model needs the special token ids, not the tokenizer: they live in core/token_ids.py."""
    for path in (PACKAGE / "model").glob("*.py"):
        reached = top_level_closure(path)
        assert "seq2seq/data/subwords.py" not in reached, f"{path.name} reaches the tokenizer: {reached}"
        assert not [m for m in reached if "import sentencepiece" in (ROOT / m).read_text(encoding="utf-8")]


def imports_torch(module: str) -> bool:
    """Whether the module imports torch when it is imported (at its top level, not inside a function)."""
    import ast

    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        if any(n == "torch" or n.startswith("torch.") for n in names):
            return True
    return False


def top_level_closure(path: Path) -> list[str]:
    """Package modules imported when ``path`` is imported (not inside functions), transitively."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += stage_deps.imported_files(current, when_imported=True)
    return sorted(str(p.relative_to(ROOT)) for p in seen)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_the_exported_models_path_never_imports_torch(module):
    reached = top_level_closure(ROOT / module)
    assert "seq2seq/search/algorithms.py" in reached or module != "seq2seq/runtime/translator.py"
    with_torch = [m for m in reached if imports_torch(m)]
    assert not with_torch, f"{module} imports torch through {with_torch}"


def test_the_torch_check_can_fail():
    assert imports_torch("seq2seq/decoding/torch_backend.py")
    assert any(imports_torch(m) for m in top_level_closure(ROOT / "seq2seq/decoding/translator.py"))


@pytest.mark.parametrize("own, line", [
    ("model", "from ..fast.dropout import Dropout"),  # the reference model reaching a fast path
    ("core", "from ..search.rules import Hypothesis"),  # the lowest layer importing one that imports it: a cycle
])
def test_the_rules_can_fail(own, line):
    """A module that imports upward is caught (the checker is not vacuous)."""
    fake = PACKAGE / own / f"{PROBE}.py"
    fake.write_text(line + "\n")
    try:
        with pytest.raises(AssertionError, match=f"{own}/ may import only"):
            test_imports_go_the_allowed_way(fake)
    finally:
        fake.unlink()


def test_every_subpackage_says_what_it_holds():
    for name in ALLOWED:
        doc = (PACKAGE / name / "__init__.py").read_text()
        assert doc.startswith('"""') and "TODO" not in doc and len(doc) > 80, f"seq2seq/{name}/__init__.py"


def readme_layout() -> str:
    """The README's layout section, up to the end of its code block."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    return layout[: layout.index("```", layout.index("```") + 3)]


def readme_subpackages() -> dict[str, str]:
    """The README layout's entry of each subpackage (its ``  name/`` line and the lines under it)."""
    import re

    entries: dict[str, str] = {}
    current = None
    for line in readme_layout().splitlines():
        found = re.match(r"  (\w+)/\s", line)
        if found:
            current = found.group(1)
            entries[current] = line[found.end():]
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def test_the_readme_layout_names_every_subpackage_and_module():
    """The README's layout section matches the tree: each subpackage has an entry, in layer order, that
    names each of its modules (as a word, in that subpackage's entry)."""
    import re

    entries = readme_subpackages()
    assert list(entries) == LAYERS, "README layout: list the subpackages as LAYERS does, lowest first"
    for name in ALLOWED:
        for module in (PACKAGE / name).glob("*.py"):
            if module.stem not in ("__init__", PROBE):
                assert re.search(rf"\b{module.stem}\b", entries[name]), \
                    f"README layout: name seq2seq/{name}/{module.name} in the {name}/ entry"
    layout = readme_layout()
    for folder in ("stages", "recipes", "bench", "docs", "tests", "tools"):
        assert f"\n{folder}/" in layout


def test_the_readme_is_at_most_250_lines_and_its_layout_names_every_docs_page():
    """History lives in the git log and experiments in docs/, so the README stays short."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250, "README.md: over 250 lines; move reference material to docs/"
    docs_line = next(line for line in readme_layout().splitlines() if line.startswith("docs/"))
    for page in (ROOT / "docs").glob("*.md"):
        assert page.stem in docs_line, f"README layout: name docs/{page.name} on the docs/ line"


def test_the_supported_torch_range_starts_where_the_code_runs():
    """pyproject.toml accepted torch 2.2, but the code calls torch.onnx.export(dynamo=...) (2.5) and
    torch.is_autocast_enabled(device_type) (2.4): a user with an older CUDA build failed at every step."""
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floor = re.search(r'"torch>=(\d+)\.(\d+)', text)
    assert floor and (int(floor.group(1)), int(floor.group(2))) >= (2, 5), "torch's floor must be at least 2.5"
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "seq2seq").rglob("*.py"))
    assert "dynamo=" in code and "is_autocast_enabled(" in code  # drop the floor only with these calls
