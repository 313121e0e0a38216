"""Training feeds truth: teacher forcing on masked, label-smoothed cross-entropy.

One epoch = every training pair once, in token-based, length-bucketed batches.
The decoder sees ``<s> y1 .. y_{n}`` and is trained to predict ``y1 .. y_n </s>``;
padding positions are dropped before the output projection, so they cost nothing
and never enter the loss. At each validation (every ``validate_every`` steps, or
at each epoch's end): validation loss and perplexity, and greedy BLEU/chrF on the
first ``valid_bleu_sentences`` valid pairs. The weights of the best validation (by
``best_metric``) are the result; ``patience`` validations without a better one stop
the run early, and the ``plateau`` schedule cuts the learning rate after
``plateau_patience`` of them.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..core.devices import OnHost
from ..core.errors import Seq2SeqError
from ..core.progress import duration
from ..data.batching import Batch, make_batch, token_batches
from ..data.encoded import EncodedSplit
from ..data.prefetch import made_ahead
from ..data.subwords import Tokenizer
from ..decoding.torch_backend import translate_ids
from ..fast import build_model
from ..fast.allocator import reuse_freed_memory
from ..fast.kernel_cache import bound_kernel_caches
from ..model.seq2seq import Seq2Seq
from ..params.config import ModelConfig, TrainConfig
from ..reporting.scoring import bleu_chrf
from ..search.settings import SearchSettings
from .checkpoint import fingerprint, load_checkpoint, remove_snapshots, save_checkpoint, save_snapshot
from .distributed import ProcessGroup
from .moving_average import MovingAverage
from .precision import autocast, candidates, check_precision, fastest, grad_scaler, numerics, quickest
from .schedules import LearningRateSchedule, teacher_forcing_ratio
from .step import BatchLoss, batch_loss
from .word_dropout import drop_words


@dataclass
class ValidationRecord:
    """One validation: where training stood, and how the model did on the valid split."""

    epoch: int
    step: int
    train_loss: float  # label-smoothed, per target token, since the previous validation
    valid_loss: float  # plain cross-entropy per target token
    valid_perplexity: float
    valid_bleu: float  # greedy, on the first train.valid_bleu_sentences valid pairs (NaN if 0)
    valid_chrf: float
    learning_rate: float  # the rate the next step will use
    teacher_forcing: float  # share of gold previous tokens fed to the decoder at this point
    tokens_per_second: float  # training only, since the previous validation
    seconds: float  # since the previous validation, this validation included


@dataclass(frozen=True)
class AveragedRecord:
    """The average of the last validations' weights (``train.average_last``), validated like one of them."""

    validations: int  # how many were averaged
    valid_loss: float
    valid_bleu: float
    valid_chrf: float
    kept: bool  # it validated better (by train.best_metric) than every single validation: the model is this


@dataclass
class TrainResult:
    model: Seq2Seq  # holding the weights of history[best_index], or the averaged weights if averaged.kept
    history: list[ValidationRecord]
    best_index: int
    parameters: int
    averaged: AveragedRecord | None = None
    precision: str = "fp32"  # the precision it trained in (train.precision auto: the one picked)

    @property
    def best(self) -> ValidationRecord:
        return self.history[self.best_index]


@dataclass(frozen=True)
class StepBatch:
    """One training step's input: this rank's share of the batch, and the target tokens of the
    whole batch (all ranks), which the host knows without asking the other ranks."""

    batch: Batch
    target_tokens: int


@dataclass
class Progress:
    """Where a run stands: saved in every checkpoint as plain values."""

    epoch: int = 1
    data_pass: int = 1  # the next batch to train is batch ``batch`` of pass ``data_pass``'s order
    batch: int = 0  # (the pass is the epoch unless train.epoch_steps is set)
    step: int = 0
    loss_sum: float = 0.0  # since the previous validation
    token_sum: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_index: int = -1
    best_value: float = math.inf  # train.best_metric, sign-flipped where higher is better
    stopped: bool = False  # early stopping has ended the run
    precision: str = ""  # what train.precision means for this run (auto: the one picked), set when it starts


def set_threads(threads: int, processes: int = 1) -> None:
    """``threads`` (0: the machine's cores, shared among ``processes`` ranks)."""
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // processes))


@torch.inference_mode()
def validation_loss(model: Seq2Seq, split: EncodedSplit, batch_tokens: int, device: torch.device,
                    precision: str) -> float:
    model.eval()
    total, tokens = torch.zeros((), dtype=torch.float64, device=device), 0  # summed where computed: no waits
    for idx in token_batches(split.src.lengths, split.tgt.lengths, batch_tokens, 0, 0, shuffle=False):
        batch = make_batch([split.src[i] for i in idx], [split.tgt[i] for i in idx]).to(device, non_blocking=True)
        with autocast(device, precision):
            total += batch_loss(model, batch, 0.0).double()
        tokens += batch.n_tokens
    return float(total) / max(tokens, 1)


def validation_scores(model: Seq2Seq, split: EncodedSplit, references: Sequence[str], tokenizer: Tokenizer,
                      count: int, device: torch.device) -> tuple[float, float]:
    if count == 0:
        return float("nan"), float("nan")
    model.eval()
    sources = [split.src[i].tolist() for i in range(min(count, len(split)))]
    hyps = translate_ids(model, sources, SearchSettings(beam=1, batch_size=128), device)
    texts = tokenizer.decode([h[0].tokens for h in hyps])
    return bleu_chrf(texts, references[: len(texts)])


def find_checkpoint(checkpoint_dir: Path | None, model_config: ModelConfig, config: TrainConfig,
                    data_id: str) -> tuple[dict[str, Any] | None, str]:
    """The checkpoint in ``checkpoint_dir`` if it was made with these params, data and code,
    and a line saying why it is used or not."""
    return load_checkpoint(checkpoint_dir, fingerprint(model_config, config, data_id))


def train_model(
    model_config: ModelConfig,
    config: TrainConfig,
    train_split: EncodedSplit,
    valid_split: EncodedSplit,
    valid_references: Sequence[str],
    src_vocab_size: int,
    tgt_tokenizer: Tokenizer,
    device: torch.device,
    on_validation: Callable[[ValidationRecord], None] = lambda record: None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    checkpoint_dir: Path | None = None,
    resume: dict[str, Any] | None = None,
    data_id: str = "",
    checkpoint_meta: dict[str, str] | None = None,
    group: ProcessGroup = ProcessGroup(),
    resegment: Callable[[int], EncodedSplit] | None = None,
) -> TrainResult:
    """Train a model, or go on with the run in ``resume`` (from :func:`find_checkpoint`), and
    return it with the weights of its best validation (by ``config.best_metric``).

    With ``checkpoint_dir``, a checkpoint is written every ``config.checkpoint_every`` steps,
    after every validation and at the end of every epoch; resuming from it ends with the
    same weights, bit for bit on CPU, as an uninterrupted run. ``checkpoint_meta`` is
    stored with it (e.g. the MLflow run id).

    Under torchrun (``group`` from :func:`seq2seq.training.distributed.join`) every rank calls this:
    each takes its slice of every batch, DDP averages the gradients, and only rank 0 writes
    checkpoints.

    ``resegment`` (e.g. :meth:`seq2seq.data.resampling.SampledSegmentations.epoch`) gives each
    epoch its own segmentation of the training pairs; without it every epoch trains on ``train_split``.
    """
    trainer = Trainer(model_config, config, train_split, valid_split, valid_references, src_vocab_size,
                      tgt_tokenizer, device, on_validation, log,
                      checkpoint_dir, fingerprint(model_config, config, data_id), checkpoint_meta or {}, group, resegment)
    if resume is not None:
        trainer.restore(resume)
    elif group.is_main:
        remove_snapshots(checkpoint_dir)
    return trainer.run()


class Trainer:
    """The training loop: steps, validations, the kept best weights and checkpoints."""

    def __init__(self, model_config: ModelConfig, config: TrainConfig, train_split: EncodedSplit,
                 valid_split: EncodedSplit, valid_references: Sequence[str], src_vocab_size: int,
                 tgt_tokenizer: Tokenizer, device: torch.device, on_validation: Callable[[ValidationRecord], None],
                 log: Callable[[str], None], checkpoint_dir: Path | None, fingerprint: str,
                 checkpoint_meta: dict[str, str], group: ProcessGroup = ProcessGroup(),
                 resegment: Callable[[int], EncodedSplit] | None = None) -> None:
        bound_kernel_caches()  # before the first bf16 step builds a kernel
        check_precision(config.precision, device)
        if config.deterministic and device.type == "cuda":
            # cuBLAS reads it once, when PyTorch first asks it for a workspace: set before any product runs.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        set_threads(config.threads, group.world)
        reuse_freed_memory()
        torch.manual_seed(config.seed)
        self.group = group
        self.config, self.device, self.log = config, device, log
        self.train_split, self.valid_split = train_split, valid_split
        self.resegment = resegment
        self._segmented: tuple[int, EncodedSplit] | None = None  # the last epoch's resegmented split
        self.valid_references, self.tgt_tokenizer = valid_references, tgt_tokenizer
        self.on_validation = on_validation
        self.checkpoint_dir, self.fingerprint, self.checkpoint_meta = checkpoint_dir, fingerprint, checkpoint_meta
        self.model = build_model(model_config, src_vocab_size, tgt_tokenizer.vocab_size, device).to(device)
        self.loss: torch.nn.Module = BatchLoss(self.model, config.label_smoothing)
        if group.distributed:
            from torch.nn.parallel import DistributedDataParallel

            torch.manual_seed(config.seed + group.rank)  # the same initial weights, each rank its own dropout
            self.loss = DistributedDataParallel(self.loss)
        # fused: one kernel over all parameters (about 4x faster per step on CPU than the default)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate,
                                          weight_decay=config.weight_decay,
                                          fused=device.type in ("cpu", "cuda") or None)
        # With resegmentation the count varies a little from pass to pass; the schedules take pass 1's.
        self._last_order: tuple[int, list[list[int]]] | None = None
        self.steps_per_epoch = config.epoch_steps or len(self._order(1))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.schedule = LearningRateSchedule(config.lr_schedule, config.warmup_steps, self.total_steps,
                                             config.final_lr_fraction, config.plateau_factor,
                                             config.plateau_patience)
        self.progress = Progress()
        # train.ema_decay: the weights validated, kept and saved are this average of the trained ones
        self.average = MovingAverage(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.scaler: torch.amp.GradScaler | None = None  # fp16's, made when the run starts
        self._scaler_state: dict[str, Any] | None = None  # a resumed run's, loaded into it then
        self.recent_states: list[dict[str, torch.Tensor]] = []  # the last train.average_last validations' weights
        self.segment_start = time.perf_counter()  # training time = progress.train_seconds + now - this
        # On a GPU the next batches are padded and pinned on a background thread while it computes
        # (on a CPU that thread would only take cores from the step).
        self.batches_ahead = 2 if device.type == "cuda" else 0

    def split(self, epoch: int) -> EncodedSplit:
        """The training pairs as epoch ``epoch`` sees them."""
        if self.resegment is None:
            return self.train_split
        if self._segmented is None or self._segmented[0] != epoch:
            self._segmented = (epoch, self.resegment(epoch))
        return self._segmented[1]

    def _order(self, data_pass: int) -> list[list[int]]:
        """The batches of pass ``data_pass`` over the training pairs, in their order (the last asked for is kept)."""
        if self._last_order is None or self._last_order[0] != data_pass:
            split = self.split(data_pass)
            batches = token_batches(split.src.lengths, split.tgt.lengths, self.config.batch_tokens,
                                    self.config.seed, data_pass)
            # Every rank needs a share of every batch (all ranks build the same list from the seed).
            self._last_order = (data_pass, [b for b in batches if len(b) >= self.group.world])
        return self._last_order[1]

    def restore(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("fingerprint") != self.fingerprint:
            raise Seq2SeqError("the checkpoint to resume from was made with other params, data or code")
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["schedule"])
        torch.set_rng_state(checkpoint["rng"])
        if self.device.type == "cuda" and checkpoint["cuda_rng"]:
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
        progress = dict(checkpoint["progress"])
        progress.setdefault("data_pass", progress["epoch"])  # written before epochs could be steps
        self.progress = Progress(**progress)
        # Checkpoints load onto the CPU; the kept weights go back beside the model's (added to the
        # weights of later validations when averaged, which live on the model's device).
        self.best_state = self._on_device(checkpoint["best_state"])
        self.recent_states = [self._on_device(s) for s in checkpoint.get("recent_states", [])]
        self._scaler_state = checkpoint.get("scaler")
        if self.average is not None:
            self.average.load_state_dict(checkpoint["average"])

    def _on_device(self, state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
        return None if state is None else {k: v.to(self.device) for k, v in state.items()}

    def save(self) -> None:
        if self.checkpoint_dir is None or not self.group.is_main:
            return
        now = time.perf_counter()
        self.progress.train_seconds += now - self.segment_start
        self.segment_start = now
        save_checkpoint(self.checkpoint_dir, {
            "fingerprint": self.fingerprint, "meta": dict(self.checkpoint_meta), "progress": asdict(self.progress),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "best_state": self.best_state, "recent_states": self.recent_states,
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "average": None if self.average is None else self.average.state_dict(),
        })

    def teacher_forcing(self) -> float:
        c = self.config
        return teacher_forcing_ratio(self.progress.step, self.total_steps, c.teacher_forcing_start,
                                     c.teacher_forcing_end, c.teacher_forcing_schedule)

    def run(self) -> TrainResult:
        p = self.progress
        if not p.precision:  # a resumed run goes on in the one it started with
            p.precision = self.pick_precision()
        self.scaler = grad_scaler(self.device, p.precision)
        if self.scaler is not None and self._scaler_state:
            self.scaler.load_state_dict(self._scaler_state)
        with numerics(p.precision, self.config.deterministic, self.device):
            return self._train()

    def pick_precision(self) -> str:
        """train.precision, or for auto the fastest of the device's candidates, timed on the
        first batches (summed over ranks, so that every rank picks the same)."""
        c = self.config
        if c.precision != "auto":
            return c.precision
        split = self.split(1)
        batches = [self.host_batch(split, indices) for indices in self._order(1)[:2]]

        def step(model: torch.nn.Module, precision: str) -> None:
            loss_of = BatchLoss(model, c.label_smoothing)  # type: ignore[arg-type]
            for host in batches:
                with autocast(self.device, precision):
                    loss = loss_of(host.batch.to(self.device, non_blocking=True), 1.0)
                loss.backward()
            model.zero_grad(set_to_none=True)

        choices = candidates(self.device)
        picked, per_step = fastest(choices, self.device, self.model, step)
        if per_step and self.group.distributed:
            summed = self.group.summed(torch.tensor([per_step[p] for p in choices], dtype=torch.float64))
            per_step = dict(zip(choices, summed.tolist()))
            picked = quickest(choices, per_step)
        timings = ", ".join(f"{p} {s * 1000:.0f} ms" for p, s in per_step.items())
        self.log(f"train: precision auto: {picked} on {self.device}" + (f" (per step: {timings})" if timings else ""))
        return picked

    def _train(self) -> TrainResult:
        c, p = self.config, self.progress
        self.log(f"train: {self.model.num_parameters():,} parameters, {len(self.train_split):,} pairs, "
                 f"{'about ' if self.resegment else ''}{self.steps_per_epoch} batches/epoch"
                 f"{' (segmentations sampled anew each epoch)' if self.resegment else ''}, {c.epochs} epochs, "
                 f"device {self.device}")
        window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
        while p.epoch <= c.epochs and not p.stopped:
            order, split = self._order(p.data_pass), self.split(p.data_pass)
            self.model.train()
            batches_left = (self.host_batch(split, order[i]) for i in range(p.batch, len(order)))
            with contextlib.closing(made_ahead(batches_left, self.batches_ahead)) as batches:
                while p.batch < len(order):
                    tokens, loss = self.train_step(next(batches))
                    window_loss, window_tokens = window_loss + loss, window_tokens + tokens
                    if p.step % c.log_every == 0:
                        now = time.perf_counter()
                        left = (self.total_steps - p.step) * (now - window_start) / c.log_every
                        self.log(f"epoch {p.epoch} step {p.step}/{self.total_steps} "
                                 f"loss {window_loss / window_tokens:.3f} lr {self.learning_rate():.2e} "
                                 f"{window_tokens / (now - window_start):,.0f} tok/s, {duration(left)} left")
                        window_loss, window_tokens, window_start = 0.0, 0, now
                    p.batch += 1
                    pass_end = p.batch == len(order)
                    epoch_end = p.step % c.epoch_steps == 0 if c.epoch_steps else pass_end
                    last_step = epoch_end and p.epoch == c.epochs
                    validate = (p.step % c.validate_every == 0 or last_step) if c.validate_every else epoch_end
                    if validate:
                        self.validate()
                        self.model.train()
                    if epoch_end:
                        p.epoch += 1
                    if pass_end:
                        p.data_pass, p.batch = p.data_pass + 1, 0
                    if validate or epoch_end or (c.checkpoint_every and p.step % c.checkpoint_every == 0):
                        self.save()
                    if p.stopped or pass_end or p.epoch > c.epochs:
                        break
        if self.best_state is None:
            raise Seq2SeqError("the run ended before its first validation")
        averaged = self.try_average() if len(self.recent_states) > 1 else None
        self.model.load_state_dict(self.best_state)
        self.model.eval()
        history = [ValidationRecord(**r) for r in p.history]
        return TrainResult(self.model, history, p.best_index, self.model.num_parameters(), averaged, p.precision)

    def validated_weights(self) -> contextlib.AbstractContextManager:
        """The weights a validation scores and keeps: the moving average's (train.ema_decay), or the model's."""
        return contextlib.nullcontext() if self.average is None else self.average.swapped_in()

    def score_on_valid(self) -> tuple[dict[str, float], float]:
        """The current weights' valid loss, BLEU and chrF, and the value to minimise by train.best_metric."""
        c = self.config
        valid_loss = validation_loss(self.model, self.valid_split, c.batch_tokens, self.device,
                                     self.progress.precision or c.precision)
        bleu, chrf = validation_scores(self.model, self.valid_split, self.valid_references, self.tgt_tokenizer,
                                       c.valid_bleu_sentences, self.device)
        values = {"valid_loss": valid_loss, "valid_bleu": bleu, "valid_chrf": chrf}
        return values, values[c.best_metric] * (1 if c.best_metric == "valid_loss" else -1)

    def try_average(self) -> AveragedRecord:
        """Validate the mean of the last validations' weights; keep it if it beats the best single one."""
        p = self.progress
        states = self.recent_states
        averaged = {k: (sum(s[k] for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
                    for k, v in states[-1].items()}
        self.model.load_state_dict(averaged)
        values, value = self.score_on_valid()
        valid_loss, bleu, chrf = values["valid_loss"], values["valid_bleu"], values["valid_chrf"]
        kept = value < p.best_value
        if kept:
            self.best_state = averaged
        best = p.history[p.best_index]
        self.log(f"train: the average of the last {len(states)} validations' weights: valid_loss {valid_loss:.4g} "
                 f"valid_bleu {bleu:.4g} against the best single validation's {best['valid_loss']:.4g} / "
                 f"{best['valid_bleu']:.4g} (step {best['step']}): keeping " + ("the average" if kept else
                                                                                "the single validation"))
        return AveragedRecord(len(states), valid_loss, bleu, chrf, kept)

    def learning_rate(self) -> float:
        return self.config.learning_rate * self.schedule.factor(self.progress.step)

    def host_batch(self, split: EncodedSplit, indices: Sequence[int]) -> StepBatch:
        """This rank's share of the batch ``indices`` of ``split``, padded on the host (pinned for a GPU)."""
        mine = self.group.shard(indices)
        batch = make_batch([split.src[i] for i in mine], [split.tgt[i] for i in mine])
        if self.device.type == "cuda":
            batch = batch.pinned()
        return StepBatch(batch, int(split.tgt.lengths_of(indices).sum()) + len(indices))

    def train_step(self, step: StepBatch) -> tuple[int, float]:
        """One optimizer step on one batch; returns its target tokens and summed loss (over all ranks).

        On a GPU the host waits for it once (for the loss, to stop on a non-finite one before
        the update), while the backward runs: nothing else here makes it wait."""
        c, p = self.config, self.progress
        batch = drop_words(step.batch.to(self.device, non_blocking=True), c.word_dropout)
        with autocast(self.device, p.precision):
            loss = self.loss(batch, self.teacher_forcing())
        loss_sum = OnHost(self.group.summed(loss.detach().double()))
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.optimizer.zero_grad(set_to_none=True)
        # Per token of the whole batch: DDP averages over ranks, so each rank scales by world.
        per_token = loss / (step.target_tokens / self.group.world)
        (per_token if self.scaler is None else self.scaler.scale(per_token)).backward()
        value = loss_sum.value()
        if not math.isfinite(value):
            self.save()  # the last good state (the weights and optimizer before this step), not the broken one
            raise Seq2SeqError(
                f"the loss became {value} at step {p.step + 1} (epoch {p.epoch}); the last good state is "
                "checkpointed; lower train.learning_rate or train.clip_norm"
            )
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients
        if c.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.clip_norm)
        if self.scaler is None:
            self.optimizer.step()
        else:  # skips the update where the scaled gradients overflowed, and adapts the scale
            self.scaler.step(self.optimizer)
            self.scaler.update()
        p.step += 1
        if self.average is not None:
            self.average.update(p.step)
        p.loss_sum += value
        p.token_sum += step.target_tokens
        return step.target_tokens, value

    def validate(self) -> None:
        """Score the model on the valid split; keep it if best; cut the rate or stop early if stuck."""
        c, p = self.config, self.progress
        started = time.perf_counter()
        train_seconds = p.train_seconds + started - self.segment_start
        index = len(p.history)
        keep = c.average_last > 1 or (c.snapshots and self.checkpoint_dir is not None and self.group.is_main)
        with self.validated_weights():
            values, value = self.score_on_valid()
            validated = ({k: v.detach().clone() for k, v in self.model.state_dict().items()}
                         if keep or value < p.best_value else None)
        if value < p.best_value:
            p.best_value, p.best_index = value, index
            self.best_state = validated
        if c.average_last > 1:
            self.recent_states = [*self.recent_states[-(c.average_last - 1):], validated]
        valid_loss, bleu, chrf = values["valid_loss"], values["valid_bleu"], values["valid_chrf"]
        if self.schedule.observe(value):
            self.log(f"train: {c.best_metric} has not improved for {c.plateau_patience} validation(s): "
                     f"learning rate cut to {self.learning_rate():.2e}")
        record = ValidationRecord(
            epoch=p.epoch, step=p.step, train_loss=p.loss_sum / max(p.token_sum, 1), valid_loss=valid_loss,
            valid_perplexity=math.exp(min(valid_loss, 50.0)), valid_bleu=bleu, valid_chrf=chrf,
            learning_rate=self.learning_rate(), teacher_forcing=self.teacher_forcing(),
            tokens_per_second=p.token_sum / max(train_seconds, 1e-9),
            seconds=train_seconds + time.perf_counter() - started,
        )
        p.history.append(asdict(record))
        if c.snapshots and self.checkpoint_dir is not None and self.group.is_main:
            save_snapshot(self.checkpoint_dir, p.step, {
                "model": validated, "step": p.step, "epoch": p.epoch,
                "seconds": sum(r["seconds"] for r in p.history)})
        p.loss_sum, p.token_sum, p.train_seconds = 0.0, 0, 0.0
        self.segment_start = time.perf_counter()
        self.log("validation " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in asdict(record).items()))
        self.on_validation(record)
        if c.patience and index - p.best_index >= c.patience:
            p.stopped = True
            best = p.history[p.best_index]
            self.log(f"train: early stop at step {p.step}: {c.best_metric} has not improved for {c.patience} "
                     f"validation(s); keeping the weights of step {best['step']} (epoch {best['epoch']})")
