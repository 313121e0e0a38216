"""Write each recipe's dvc.yaml from the project's own: the same stages, run in the recipe's folder.

    python recipes/sync.py          # rewrite recipes/*/dvc.yaml
    python recipes/sync.py --check  # exit 1 if one is out of date (the tests run this check)

A recipe is a folder under recipes/ with its own params.yaml, and a DVC project of its own
(`dvc init --subdir`), so the root's `dvc status`, `dvc repro` and `dvc exp` leave it alone. Its
pipeline is the project's dvc.yaml with the code paths (stages/, seq2seq/, corpus) made relative
to the recipe's folder and the stage commands told where the stage scripts are (PYTHONPATH), so
`cd recipes/NAME && dvc repro` (what `make recipe NAME=...` runs) runs the same code and writes
data/, metrics/ and dvc.lock inside recipes/NAME/, leaving the default pipeline's outputs alone.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("# Generated from the project's dvc.yaml by `python recipes/sync.py`: edit that file, then rerun the\n"
          "# script. The stages are the project's, run in this folder with this folder's params.yaml.\n")
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


def recipe_pipeline(folder: Path) -> str:
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    up = "../" * len(folder.resolve().relative_to(ROOT).parts)
    pipeline["stages"] = {name: recipe_stage(stage, up) for name, stage in pipeline["stages"].items()}
    return HEADER + yaml.safe_dump(pipeline, sort_keys=False, allow_unicode=True, width=120)


def recipes() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "recipes").glob("*/params.yaml"))


def main(argv: list[str]) -> int:
    stale = []
    for folder in recipes():
        text = recipe_pipeline(folder)
        target = folder / "dvc.yaml"
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        if "--check" in argv:
            stale.append(str(target.relative_to(ROOT)))
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("out of date (run `python recipes/sync.py`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
