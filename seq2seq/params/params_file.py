"""params.yaml, written from the declarations: every section and key with its default and its meaning.

Each parameter is declared once, in :mod:`.config` (and the search settings in
:mod:`seq2seq.search.settings`): type, default, range and meaning. :func:`render` turns those
declarations into the project's params.yaml, the file DVC and the stages read;
``python tools/stage_deps.py`` writes it and ``--check`` (run by the tests) fails when the file
differs, so a default changed in its declaration reaches params.yaml, and from there every
recipe, and params.yaml cannot disagree with it.
"""
from __future__ import annotations

import dataclasses
import textwrap
import typing
from dataclasses import fields
from typing import Any

import yaml

from ..core.declared import default_of, meaning
from ..search.settings import params_fields
from .config import Params

HEADER = """\
# Everything a user tunes. Each stage in dvc.yaml lists the dotted keys it reads,
# so changing e.g. decode.beam_width reruns only decode and score.
# Tune a run by changing a value here. Each default and its meaning is declared once, in
# seq2seq/params/config.py; `python tools/stage_deps.py` writes this file from there.
"""
COMMENT_COLUMN = 26  # where a key's comment starts
WIDTH = 110


def scalar(value: Any) -> str:
    """A YAML scalar as params.yaml writes it: true/false, numbers as Python writes them, "" for empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value == "":
        return '""'
    if isinstance(value, tuple):
        return "[" + ", ".join(scalar(one) for one in value) + "]"
    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]


def flow(value: Any) -> str:
    """A nested config (a set of files) in flow style: only what differs from its defaults."""
    changed = {f.name: getattr(value, f.name) for f in fields(value) if getattr(value, f.name) != default_of(f)}
    return "{" + ", ".join(f"{key}: {scalar(v)}" for key, v in changed.items()) + "}"


def commented(text: str, note: str, indent: str = "") -> list[str]:
    """``text`` with ``# note`` from the comment column, wrapped onto continuation lines."""
    start = max(COMMENT_COLUMN, len(text) + 1)
    wrapped = textwrap.wrap(note, WIDTH - start - 2) or [""]
    lines = [f"{text:<{start}}# {wrapped[0]}".rstrip()]
    lines += [f"{'':<{start}}# {more}" for more in wrapped[1:]]
    return lines


def section_lines(name: str, config: Any) -> list[str]:
    doc = " ".join((type(config).__doc__ or "").strip().split("\n\n")[0].split())
    lines = [f"# {line}" for line in textwrap.wrap(doc, WIDTH - 2)] + [f"{name}:"]
    for f in fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("inline"):  # the search settings, under their params names
            lines += [line for key, setting in params_fields()
                      for line in commented(f"  {key}: {scalar(getattr(value, setting.name))}", meaning(setting))]
        elif dataclasses.is_dataclass(value):
            lines += commented(f"  {f.name}: {flow(value)}", meaning(f))
        else:
            lines += commented(f"  {f.name}: {scalar(value)}", meaning(f))
    return lines


def render(params: Params | None = None) -> str:
    """params.yaml's text for ``params`` (the declared defaults unless given)."""
    params = Params() if params is None else params
    hints = typing.get_type_hints(Params)
    out = [HEADER.rstrip("\n")]
    for f in fields(Params):
        out.append("")
        value = getattr(params, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out += section_lines(f.name, value)
        else:  # tests: named sets of files
            out += [f"# {line}" for line in textwrap.wrap(meaning(f), WIDTH - 2)] + [f"{f.name}:"]
            out += [f"  {name}: {flow(test_set)}" for name, test_set in value.items()]
    return "\n".join(out) + "\n"
