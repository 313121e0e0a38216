import re
from pathlib import Path

import pytest

from seq2seq.core.devices import resolve_device
from seq2seq.core.errors import ParamError, Seq2SeqError
from seq2seq.params.config import ModelConfig, Params, flatten, load_params, params_from_dict


def test_defaults_validate_and_repo_params_load():
    assert params_from_dict({}) == Params()
    params = load_params("params.yaml")  # the project's own params.yaml is valid
    assert params.model.cell in ("lstm", "gru")


def test_params_yaml_is_written_from_the_declarations():
    """params.yaml is the declared defaults, each with its meaning (seq2seq/params/params_file.py), so the
    Python API (TrainConfig(), ...) and a pipeline run start from the same values (TrainConfig.epochs once
    said 3 where params.yaml said 6; model.encoder_hidden_size was missing from params.yaml)."""
    from seq2seq.params.params_file import render

    assert Path("params.yaml").read_text(encoding="utf-8") == render()
    assert load_params("params.yaml") == Params()


def declared_fields():
    """(section, field) of every declared parameter, the search settings under their params names."""
    from dataclasses import fields, is_dataclass

    from seq2seq.search.settings import params_fields

    for section in fields(Params):
        config = getattr(Params(), section.name)
        if not is_dataclass(config):
            yield section.name, section
            continue
        for f in fields(config):
            if f.metadata.get("inline"):
                yield from ((section.name, setting) for _, setting in params_fields())
            else:
                yield section.name, f


def test_every_parameter_is_declared_with_its_meaning():
    for section, f in declared_fields():
        assert f.metadata.get("meaning"), f"{section}.{f.name}: declare it with param(default, meaning, ...)"


def outside(bounds, integer):
    """A value just outside ``bounds``."""
    step = 1 if integer else 0.01
    if bounds.at_least is not None:
        return bounds.at_least - step
    if bounds.above is not None:
        return bounds.above
    if bounds.at_most is not None:
        return bounds.at_most + step
    return bounds.below


@pytest.mark.parametrize("section, field", [(s, f) for s, f in declared_fields() if f.metadata.get("range")],
                         ids=lambda x: x if isinstance(x, str) else x.name)
def test_a_declared_range_is_what_validation_enforces(section, field):
    """Each range comes from its declaration: a value just outside it is refused with the declared
    advice, naming the params.yaml key; the default is inside it."""
    from seq2seq.search.settings import param_name

    bounds = field.metadata["range"]
    integer = isinstance(field.default, int) and not isinstance(field.default, bool)
    assert bounds.holds(field.default)
    key = param_name(field) if section == "decode" and "param" in field.metadata else field.name
    value = outside(bounds, integer)
    with pytest.raises(ParamError) as err:
        params_from_dict({section: {key: value}})
    assert err.value.key == f"{section}.{key}" and err.value.allowed == bounds.advice(integer)
    assert err.value.allowed.startswith("use an integer" if integer else "use a number")


@pytest.mark.parametrize(
    "raw, key, fragment",
    [
        ({"model": {"hidden_sise": 3}}, "model.hidden_sise", "unknown key"),
        ({"modle": {}}, "modle", "unknown section"),
        ({"model": {"hidden_size": 0}}, "model.hidden_size", ">= 1"),
        ({"model": {"hidden_size": "big"}}, "model.hidden_size", "integer"),
        ({"model": {"hidden_size": True}}, "model.hidden_size", "integer"),
        ({"model": {"cell": "rnn"}}, "model.cell", "lstm, gru"),
        ({"model": {"attention": "fancy"}}, "model.attention", "none, luong"),
        ({"model": {"dropout": -0.1}}, "model.dropout", "[0, 1)"),
        ({"model": {"dropout": 1.0}}, "model.dropout", "[0, 1)"),
        ({"decode": {"beam_width": 0}}, "decode.beam_width", ">= 1"),
        ({"train": {"device": "gpu"}}, "train.device", "auto, cpu, cuda"),
        ({"train": {"learning_rate": 0}}, "train.learning_rate", "> 0"),
        ({"train": {"lr_schedule": "cosine"}}, "train.lr_schedule", "linear, plateau, constant"),
        ({"train": {"plateau_factor": 1.0}}, "train.plateau_factor", "(0, 1)"),
        ({"train": {"plateau_patience": 0}}, "train.plateau_patience", ">= 1"),
        ({"train": {"validate_every": -5}}, "train.validate_every", ">= 0"),
        ({"data": {"source": "url", "url": "ftp://x/y.tsv", "sha256": "0" * 64}}, "data.url", "http"),
        ({"data": {"source": "url", "url": "https://x/y.tsv"}}, "data.sha256", "sha256"),
        ({"data": {"source": "local"}}, "data.path", "local source"),
        ({"model": {"attention": "luong", "luong_score": "dot", "encoder_hidden_size": 32, "hidden_size": 16}},
         "model.luong_score", "encoder_hidden_size"),
        ({"train": {"nproc": 0}}, "train.nproc", ">= 1"),
        ({"decode": {"early_stop": "yes"}}, "decode.early_stop", "true or false"),
        ({"train": {"average_last": -1}}, "train.average_last", ">= 0"),
        ({"train": {"ema_decay": 1.0}}, "train.ema_decay", "[0, 1)"),
        ({"train": {"more_seeds": 7}}, "train.more_seeds", "use a list"),
        ({"train": {"more_seeds": [7, "x"]}}, "train.more_seeds", "use an integer"),
        ({"train": {"more_seeds": [7, 7]}}, "train.more_seeds", "each seed once"),
        ({"train": {"seed": 7, "more_seeds": [7]}}, "train.more_seeds", "not train.seed (7)"),
        ({"train": {"more_seeds": [-1]}}, "train.more_seeds", ">= 0"),
        ({"train": {"subword_sampling": -0.1}}, "train.subword_sampling", ">= 0"),
        ({"train": {"word_dropout": 1.0}}, "train.word_dropout", "[0, 1)"),
        ({"train": {"subword_sampling": 1.0}, "tokenize": {"model_type": "bpe"}}, "train.subword_sampling",
         "BPE-dropout"),
        ({"data": {"valid": {"path": "https://x/v.tsv"}}}, "data.valid.sha256", "sha256"),
        ({"data": {"valid": {"target_path": "v.de"}}}, "data.valid.path", "source-side file"),
        ({"data": {"valid": {"pth": "v.tsv"}}}, "data.valid.pth", "unknown key"),
        ({"data": {"valid": "v.tsv"}}, "data.valid", "mapping"),
        ({"data": {"source": "url", "url": "https://x/a.en", "sha256": "0" * 64, "target_url": "https://x/a.de"}},
         "data.target_sha256", "sha256"),
        ({"tests": {}}, "tests", "mapping of test-set names"),
        ({"tests": {"a b": {"path": "t.tsv"}}}, "tests.a b", "letters, digits"),
        ({"tests": {"wmt.14": {"path": "t.tsv"}}}, "tests.wmt.14", "letters, digits"),
        ({"tests": {"t": {}}}, "tests.t", "random_split: true"),
        ({"tests": {"t": {"random_split": True, "path": "t.tsv"}}}, "tests.t.random_split", "either"),
        ({"tests": {"t": {"path": "https://x/t.en.gz", "sha256": "0" * 64, "target_path": "https://x/t.de.gz"}}},
         "tests.t.target_sha256", "sha256"),
    ],
)
def test_bad_params_name_the_key(raw, key, fragment):
    with pytest.raises(ParamError) as info:
        params_from_dict(raw)
    message = str(info.value)
    assert message.startswith(f"params.yaml: {key}: ")
    assert fragment in message
    assert "\n" not in message


def test_ints_are_accepted_for_floats_and_converted():
    params = params_from_dict({"train": {"learning_rate": 1}})
    assert params.train.learning_rate == 1.0 and isinstance(params.train.learning_rate, float)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("model:\n  cell: [gru\n", encoding="utf-8")
    with pytest.raises(Seq2SeqError, match=r"params\.yaml:3: invalid YAML \(.*\); fix the syntax"):
        load_params(path)


def test_flatten_gives_dotted_keys():
    flat = flatten(Params())
    assert flat["model.hidden_size"] == ModelConfig().hidden_size
    assert flat["decode.beam_width"] == 5
    assert all("." in key for key in flat)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ParamError, match="train.device.*CUDA is not available"):
            resolve_device("cuda")


def test_test_sets_and_an_official_valid_set_parse():
    params = params_from_dict({
        "data": {"valid": {"path": "https://x/val.en.gz", "sha256": "a" * 64, "target_path": "val.de"}},
        "tests": {"test_2016_flickr": {"path": "t.en", "target_path": "t.de"}, "rand": {"random_split": True}},
    })
    assert params.data.valid.given and params.data.valid.target_path == "val.de"
    assert list(params.tests) == ["test_2016_flickr", "rand"]
    assert params.tests["rand"].random_split and not params.tests["test_2016_flickr"].random_split
    assert Params().tests["test"].random_split and not Params().data.valid.given
    assert flatten(params)["data.valid.sha256"] == "a" * 64


@pytest.mark.parametrize("device, nproc, gpus, message", [
    ("auto", 4, 2, "train.nproc: got 4; each rank trains on a GPU of its own and this machine has 2: use at most 2"),
    ("cuda", 3, 1, "use at most 1, or train.device: cpu"),
    ("cuda:1", 2, 2, "train.device: got 'cuda:1'; with train.nproc 2 each rank takes a GPU of its own"),
])
def test_more_ranks_than_gpus_or_one_named_gpu_for_several_ranks_is_a_param_error(device, nproc, gpus, message):
    """Checked before torchrun starts any rank (it failed in set_device with 'invalid device ordinal',
    or put every rank on one GPU)."""
    from seq2seq.core.devices import check_ranks

    with pytest.raises(ParamError, match=re.escape(message)):
        check_ranks(device, nproc, gpus)


@pytest.mark.parametrize("device, nproc, gpus", [("auto", 2, 0), ("cpu", 4, 2), ("cuda", 2, 2), ("auto", 1, 0),
                                                 ("cuda:1", 1, 2)])
def test_ranks_that_fit_the_machine_pass(device, nproc, gpus):
    from seq2seq.core.devices import check_ranks

    check_ranks(device, nproc, gpus)


def test_auto_says_when_it_stays_on_the_cpu_beside_a_gpu_with_a_cpu_build_of_torch(monkeypatch, capsys):
    """`make run TORCH=` after a CPU run keeps the CPU build in .venv: auto then trained on the CPU
    without a word."""
    import torch

    from seq2seq.core import devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(devices, "nvidia_gpu_present", lambda: True)
    assert resolve_device("auto") == torch.device("cpu")
    assert "running on the CPU, though this machine has an NVIDIA GPU: this torch" in capsys.readouterr().err
    monkeypatch.setattr(devices, "nvidia_gpu_present", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and capsys.readouterr().err == ""


def test_a_seed_of_more_seeds_gets_the_groups_params_and_its_own_files():
    from seq2seq.core.errors import Seq2SeqError
    from seq2seq.params.config import params_from_dict
    from seq2seq.params.seeds import all_models, as_seed, seed_from_args

    params = params_from_dict({"train": {"seed": 42, "more_seeds": [1, 2]}})
    assert seed_from_args(params, ["2"], "train") == 2
    for bad in ([], ["3"], ["x"], ["1", "2"]):
        with pytest.raises(Seq2SeqError, match="one of train.more_seeds in params.yaml \\(1, 2\\)"):
            seed_from_args(params, bad, "train")
    two = as_seed(params, 2)
    assert (two.train.seed, two.train.more_seeds) == (2, (42, 1)) and two.model == params.model
    models = all_models(params)
    assert [m.seed for m in models] == [42, 1, 2]
    assert [str(m.bundle) for m in models] == ["data/model", "data/seeds/1/model", "data/seeds/2/model"]
    assert len({m.checkpoints for m in models}) == 3


def test_a_seeds_stage_stops_where_dvc_yaml_runs_no_ensemble_of_the_seeds(tmp_path):
    from seq2seq.core.errors import Seq2SeqError
    from seq2seq.params.config import params_from_dict
    from seq2seq.params.seeds import check_ensemble_stages

    params = params_from_dict({"train": {"more_seeds": [1, 2]}, "tests": {"test": {"random_split": True}}})
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text((Path(__file__).parents[1] / "dvc.yaml").read_text())  # the project's: no seeds, so no ensemble stages
    with pytest.raises(Seq2SeqError, match=r"dvc.yaml: no ensemble stage for test set test though train.more_seeds "
                                           r"lists 1, 2; run python tools/stage_deps.py"):
        check_ensemble_stages(params, dvc_yaml)
    dvc_yaml.write_text("vars:\n- tests: {test: {}}\n  ensembles: {test: {}}\nstages: {}\n")
    check_ensemble_stages(params, dvc_yaml)  # as tools/stage_deps.py writes it for the seeds
    check_ensemble_stages(params_from_dict({}), tmp_path / "none.yaml")  # no seeds, nothing to check
