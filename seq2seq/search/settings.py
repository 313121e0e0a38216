"""How to search for translations, declared once.

:class:`SearchSettings` is the one declaration of the search settings. Each field's metadata
says what the setting is called elsewhere, and everything else is derived from it:

- ``params.yaml``'s ``decode`` section (``param``: ``beam`` is ``decode.beam_width`` there),
  parsed and validated by :mod:`seq2seq.params.config` into ``DecodeConfig.search``;
- the ``seq2seq translate`` flags (``flag``: ``beam`` is ``--beam``; a boolean whose default
  is true gets a flag that turns it off, ``--full-beam``), built by :func:`add_search_flags`;
- the keywords of ``Translator.translate(...)`` (the field names);
- the params the MLflow model's ``predict`` accepts (``predict``), :func:`predict_params`.

Defaults, help texts and the checks of :func:`problem` therefore agree
everywhere; an error names the setting the way the caller wrote it.
"""
from __future__ import annotations

import argparse
import typing
from dataclasses import Field, dataclass, fields
from typing import Any, Callable, Iterator

from ..core.declared import meaning, out_of_range
from ..core.declared import param as declared_param
from ..core.errors import Seq2SeqError


def _setting(default: Any, meaning: str, *, param: str | None = "", flag: str | None = "",
             predict: bool = True, **bounds: Any) -> Any:
    """A setting (:func:`seq2seq.core.declared.param`) with its names: ``param`` ("" = the field name,
    None = not in params.yaml), ``flag`` ("" = ``--field-name``, None = no flag), ``predict`` (the
    MLflow model accepts it); ``bounds``: its range."""
    return declared_param(default, meaning, param=param, flag=flag, predict=predict, **bounds)


@dataclass(frozen=True)
class SearchSettings:
    """How to search; each field is also a keyword of ``Translator.translate(...)``."""

    beam: int = _setting(5, "beam width; 1 = greedy", param="beam_width", at_least=1)
    nbest: int = _setting(1, "hypotheses per sentence: beam search's n best (<= beam), or n samples",
                          predict=False, at_least=1)
    length_penalty: float = _setting(1.0, "GNMT alpha: scores are log_prob / ((5 + steps) / 6) ** alpha; "
                                          "0 = raw log-probability", at_least=0)
    early_stop: bool = _setting(True, "beam: a sentence is done once its best candidate ends (Joey NMT, "
                                      "OpenNMT); off: once `beam` hypotheses have ended (fairseq: slower, "
                                      "exact for any alpha)", flag="--full-beam")
    max_length_ratio: float = _setting(1.5, "longest output: ratio * source tokens + max_length_extra", above=0)
    max_length_extra: int = _setting(10, "longest output: added to ratio * source tokens", at_least=0)
    batch_size: int = _setting(64, "sentences per batch", at_least=1)
    sampling: bool = _setting(False, "draw each token from the model's distribution instead of beam search",
                              flag="--sample")
    temperature: float = _setting(1.0, "sampling: softmax temperature", above=0)
    top_k: int = _setting(0, "sampling: keep the k most likely tokens", at_least=0, note="0 = no cut")
    top_p: float = _setting(1.0, "sampling: keep the smallest set of tokens with this much probability (1 = all)",
                            above=0, at_most=1)
    seed: int = _setting(1, "sampling: the same seed, input and settings give the same samples")
    attention: bool = _setting(False, "return each hypothesis' attention weights", param=None, flag=None,
                               predict=False)

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        bad = problem(values, lambda name: name)
        if bad:
            name, advice = bad
            raise Seq2SeqError(f"{name}: got {values[name]!r}; {advice}")


def problem(values: dict[str, Any], name: Callable[[str], str]) -> tuple[str, str] | None:
    """The first setting in ``values`` (field name -> value; missing ones take their defaults) that is
    out of range, as (field name, what to do), or None. ``name`` gives a field's name as the caller
    knows it (a params key, a flag, a keyword), for advice that mentions another setting."""
    hints = typing.get_type_hints(SearchSettings)
    v = {f.name: f.default for f in fields(SearchSettings)} | values
    for key, value in v.items():
        if hints[key] is bool and not isinstance(value, bool):
            return key, "use true or false"
        if hints[key] is int and (isinstance(value, bool) or not isinstance(value, int)):
            return key, "use an integer"
        if hints[key] is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return key, "use a number"
    bad = out_of_range(v, fields(SearchSettings))
    if bad:
        return bad
    if not v["sampling"] and v["nbest"] > v["beam"]:
        return "nbest", f"beam search keeps {v['beam']} hypotheses ({name('beam')}): use {name('nbest')} <= that"
    return None


def search_fields() -> tuple[Field, ...]:
    return fields(SearchSettings)


def param_name(f: Field) -> str | None:
    """The field's key in params.yaml's decode section (None: not a param)."""
    return None if f.metadata["param"] is None else (f.metadata["param"] or f.name)


def flag_name(f: Field) -> str | None:
    return None if f.metadata["flag"] is None else (f.metadata["flag"] or "--" + f.name.replace("_", "-"))


def params_fields() -> Iterator[tuple[str, Field]]:
    """(params.yaml key, field) of every setting that is a param, in declaration order."""
    for f in search_fields():
        key = param_name(f)
        if key is not None:
            yield key, f


def predict_params() -> dict[str, Any]:
    """The settings the MLflow model's ``predict(..., params=...)`` accepts, with their defaults."""
    return {f.name: f.default for f in search_fields() if f.metadata["predict"]}


def add_search_flags(parser: argparse.ArgumentParser) -> None:
    """One command-line flag per setting that has one, with its default and help."""
    hints = typing.get_type_hints(SearchSettings)
    for f in search_fields():
        flag = flag_name(f)
        if flag is None:
            continue
        if hints[f.name] is bool:
            # a flag switches the default: --sample turns sampling on, --full-beam turns early_stop off
            parser.add_argument(flag, dest=f.name, action="store_false" if f.default else "store_true",
                                help=meaning(f))
        else:
            parser.add_argument(flag, dest=f.name, type=hints[f.name], default=f.default,
                                help=f"{meaning(f)} (default: {f.default})")


def settings_from_flags(args: argparse.Namespace) -> SearchSettings:
    """The settings parsed by :func:`add_search_flags`; a bad value names its flag."""
    values = {f.name: getattr(args, f.name) for f in search_fields() if flag_name(f) is not None}
    flags = {f.name: flag_name(f) or f.name for f in search_fields()}
    bad = problem(values, lambda name: flags[name])
    if bad:
        name, advice = bad
        raise Seq2SeqError(f"{flags[name]}: got {values[name]!r}; {advice}")
    return SearchSettings(**values)
