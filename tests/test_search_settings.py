"""The search settings are declared once (seq2seq.search.settings); params.yaml, the decode section's
validation, the CLI and the MLflow model's params all follow that declaration."""
import argparse
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from seq2seq.core.errors import ParamError, Seq2SeqError
from seq2seq.params.config import flatten, params_from_dict
from seq2seq.search.settings import SearchSettings, add_search_flags, params_fields, settings_from_flags
from seq2seq.tracking.pyfunc_model import PREDICT_PARAMS

ROOT = Path(__file__).resolve().parents[1]


def test_params_yaml_decode_section_holds_every_setting_with_its_default():
    decode = yaml.safe_load((ROOT / "params.yaml").read_text())["decode"]
    for key, f in params_fields():
        assert decode[key] == f.default, key
    parsed = params_from_dict({"decode": decode}).decode
    assert parsed.search == SearchSettings()
    assert {k: v for k, v in flatten(parsed).items() if k in decode} == decode  # the same keys come back


def test_cli_flags_default_to_the_declared_values():
    parser = argparse.ArgumentParser()
    add_search_flags(parser)
    assert settings_from_flags(parser.parse_args([])) == SearchSettings()
    args = parser.parse_args(["--beam", "3", "--nbest", "2", "--full-beam", "--batch-size", "7"])
    assert settings_from_flags(args) == SearchSettings(beam=3, nbest=2, early_stop=False, batch_size=7)
    assert settings_from_flags(parser.parse_args(["--sample"])).sampling


def test_a_bad_value_is_named_as_the_caller_wrote_it():
    parser = argparse.ArgumentParser()
    add_search_flags(parser)
    with pytest.raises(Seq2SeqError, match=r"^--nbest: got 3; beam search keeps 2 hypotheses \(--beam\)"):
        settings_from_flags(parser.parse_args(["--beam", "2", "--nbest", "3"]))
    with pytest.raises(Seq2SeqError, match=r"^--top-p: got 0.0; "):
        settings_from_flags(parser.parse_args(["--sample", "--top-p", "0"]))
    with pytest.raises(ParamError) as err:
        params_from_dict({"decode": {"beam_width": 2, "nbest": 3}})
    assert err.value.key == "decode.nbest" and "decode.beam_width" in err.value.allowed
    with pytest.raises(Seq2SeqError, match="^beam: got 0; use an integer >= 1"):
        SearchSettings(beam=0)


def test_mlflow_model_params_are_settings_with_their_defaults():
    declared = {f.name: f.default for f in fields(SearchSettings)}
    assert PREDICT_PARAMS and all(declared[k] == v for k, v in PREDICT_PARAMS.items())
    assert "nbest" not in PREDICT_PARAMS and "attention" not in PREDICT_PARAMS  # predict returns one string each
