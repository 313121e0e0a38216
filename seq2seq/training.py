"""Training feeds truth: teacher forcing on masked, label-smoothed cross-entropy.

One epoch = every training pair once, in token-based, length-bucketed batches.
The decoder sees ``<s> y1 .. y_{n}`` and is trained to predict ``y1 .. y_n </s>``;
padding positions are dropped before the output projection, so they cost nothing
and never enter the loss. After each epoch: validation loss and perplexity, and
greedy BLEU/chrF on the first ``valid_bleu_sentences`` valid pairs. The weights of
the epoch with the lowest validation loss are the result.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .batching import Batch, make_batch, token_batches
from .checkpoint import fingerprint, load_checkpoint, save_checkpoint
from .config import ModelConfig, TrainConfig
from .errors import Seq2SeqError
from .model import Seq2Seq
from .scoring import bleu_chrf
from .subwords import PAD_ID, EncodedSplit, Tokenizer
from .translator import SearchSettings, translate_ids


@dataclass
class EpochRecord:
    epoch: int
    step: int
    train_loss: float  # label-smoothed, per target token
    valid_loss: float  # plain cross-entropy per target token
    valid_perplexity: float
    valid_bleu: float
    valid_chrf: float
    learning_rate: float
    teacher_forcing: float  # share of gold previous tokens fed to the decoder at the epoch's end
    tokens_per_second: float
    seconds: float


@dataclass
class TrainResult:
    model: Seq2Seq
    history: list[EpochRecord]
    best_epoch: int
    parameters: int


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)


def lr_factor(step: int, warmup: int, total: int, final_fraction: float) -> float:
    """Linear warm-up to 1, then linear decay to ``final_fraction`` at ``total`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return 1.0 - (1.0 - final_fraction) * progress


def teacher_forcing_ratio(step: int, total: int, start: float, end: float, schedule: str) -> float:
    """Share of gold previous tokens at ``step``: scheduled from ``start`` down to ``end``.

    ``linear``: a straight line over the run. ``inverse_sigmoid`` (Bengio et al. 2015):
    k / (k + exp(step / k)), which stays near ``start`` early, falls fastest mid-run and
    flattens near ``end``; k is chosen so the midpoint falls at half the steps.
    """
    if start == end or total <= 0:
        return start
    progress = min(1.0, step / total)
    if schedule == "linear":
        return start + (end - start) * progress
    k = _inverse_sigmoid_k(total)
    decay = k / (k + math.exp(min(step / k, 700.0)))  # 1 -> 0
    return end + (start - end) * decay


def _inverse_sigmoid_k(total: int) -> float:
    """k with k * ln(k) = total / 2 (the decay k / (k + exp(i / k)) is 0.5 there)."""
    low, high = 1.0 + 1e-9, max(3.0, float(total))
    for _ in range(100):
        mid = (low + high) / 2
        if mid * math.log(mid) < total / 2:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def decoder_features(model: Seq2Seq, batch: Batch, ratio: float) -> torch.Tensor:
    """Features [B, T, H] with teacher forcing: the gold previous token with probability ``ratio``,
    else the model's own greedy prediction from the step before (scheduled sampling).

    At ratio 1.0 the whole target goes through the decoder in one call (the fast path).
    """
    if ratio >= 1.0:
        return model(batch.src, batch.src_lengths, batch.prev_tokens)
    memory, state = model.encode(batch.src, batch.src_lengths)
    prev = batch.prev_tokens[:, :1]
    steps = []
    for t in range(batch.prev_tokens.size(1)):
        features, state, _ = model.decoder(prev, state, memory)
        steps.append(features)
        if t + 1 < batch.prev_tokens.size(1):
            gold = batch.prev_tokens[:, t + 1:t + 2]
            with torch.no_grad():
                predicted = model.generator(features).argmax(dim=-1)
            use_gold = torch.rand(gold.shape, device=gold.device) < ratio
            prev = torch.where(use_gold | (gold == PAD_ID), gold, predicted)
    return torch.cat(steps, dim=1)


def batch_loss(model: Seq2Seq, batch: Batch, label_smoothing: float, teacher_forcing: float = 1.0) -> torch.Tensor:
    """Summed cross-entropy over the non-pad target positions of one batch."""
    features = decoder_features(model, batch, teacher_forcing)  # [B, T, H]
    mask = batch.gold != PAD_ID
    logits = model.generator(features[mask])  # [N, V]: padding positions are never projected
    return F.cross_entropy(logits.float(), batch.gold[mask], label_smoothing=label_smoothing, reduction="sum")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def validation_loss(model: Seq2Seq, split: EncodedSplit, batch_tokens: int, device: torch.device,
                    precision: str) -> float:
    model.eval()
    total, tokens = 0.0, 0
    for idx in token_batches([len(s) for s in split.src], [len(t) for t in split.tgt], batch_tokens, 0, 0,
                             shuffle=False):
        batch = make_batch([split.src[i] for i in idx], [split.tgt[i] for i in idx]).to(device)
        with autocast(device, precision):
            total += float(batch_loss(model, batch, 0.0))
        tokens += batch.n_tokens
    return total / max(tokens, 1)


def validation_scores(model: Seq2Seq, split: EncodedSplit, references: Sequence[str], tokenizer: Tokenizer,
                      count: int, device: torch.device) -> tuple[float, float]:
    if count == 0:
        return float("nan"), float("nan")
    model.eval()
    sources = [split.src[i].tolist() for i in range(min(count, len(split)))]
    hyps = translate_ids(model, sources, SearchSettings(beam=1, batch_size=128), device)
    texts = tokenizer.decode([h[0].tokens for h in hyps])
    return bleu_chrf(texts, references[: len(texts)])


def train_model(
    model_config: ModelConfig,
    config: TrainConfig,
    train_split: EncodedSplit,
    valid_split: EncodedSplit,
    valid_references: Sequence[str],
    src_vocab_size: int,
    tgt_tokenizer: Tokenizer,
    device: torch.device,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    checkpoint_dir: Path | None = None,
    data_id: str = "",
    checkpoint_meta: dict[str, str] | None = None,
) -> TrainResult:
    """Train (or resume) a model and return the weights of its best epoch (by ``config.best_metric``).

    With ``checkpoint_dir``, a checkpoint is written every ``config.checkpoint_every`` steps
    and at the end of every epoch; a later call with the same params, data (``data_id``)
    and code resumes from it and ends with the same weights, bit for bit on CPU, as an
    uninterrupted run. ``checkpoint_meta`` is stored with it (e.g. the MLflow run id).
    """
    set_threads(config.threads)
    torch.manual_seed(config.seed)
    model = Seq2Seq(model_config, src_vocab_size, tgt_tokenizer.vocab_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    src_lengths = [len(s) for s in train_split.src]
    tgt_lengths = [len(t) for t in train_split.tgt]
    steps_per_epoch = len(token_batches(src_lengths, tgt_lengths, config.batch_tokens, config.seed, 0))
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.warmup_steps, total_steps, config.final_lr_fraction)
    )
    log(f"train: {model.num_parameters():,} parameters, {len(train_split):,} pairs, "
        f"{steps_per_epoch} batches/epoch, {config.epochs} epochs, device {device}")
    history: list[EpochRecord] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_loss, best_epoch = math.inf, 0
    step, start_epoch, start_batch = 0, 1, 0
    loss_sum, token_sum = 0.0, 0
    expected = fingerprint(model_config, config, data_id)
    checkpoint, why = load_checkpoint(checkpoint_dir, expected)
    if checkpoint_dir is not None:
        log(f"train: {why}")
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"])
        history = [EpochRecord(**r) for r in checkpoint["history"]]
        best_state, best_loss, best_epoch = checkpoint["best_state"], checkpoint["best_loss"], checkpoint["best_epoch"]
        step, start_epoch, start_batch = checkpoint["step"], checkpoint["epoch"], checkpoint["batch"]
        loss_sum, token_sum = checkpoint["loss_sum"], checkpoint["token_sum"]

    def save(epoch: int, batch: int) -> None:
        if checkpoint_dir is None:
            return
        save_checkpoint(checkpoint_dir, {
            "fingerprint": expected, "meta": dict(checkpoint_meta or {}),
            "epoch": epoch, "batch": batch, "step": step, "loss_sum": loss_sum, "token_sum": token_sum,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(), "history": [asdict(r) for r in history],
            "best_state": best_state, "best_loss": best_loss, "best_epoch": best_epoch,
        })

    for epoch in range(start_epoch, config.epochs + 1):
        model.train()
        started = time.perf_counter()
        epoch_tokens = 0
        window_loss, window_tokens, window_start = 0.0, 0, started
        batches = token_batches(src_lengths, tgt_lengths, config.batch_tokens, config.seed, epoch)
        for position in range(start_batch, len(batches)):
            idx = batches[position]
            batch = make_batch([train_split.src[i] for i in idx], [train_split.tgt[i] for i in idx]).to(device)
            ratio = teacher_forcing_ratio(step, total_steps, config.teacher_forcing_start,
                                          config.teacher_forcing_end, config.teacher_forcing_schedule)
            with autocast(device, config.precision):
                loss = batch_loss(model, batch, config.label_smoothing, ratio)
            value = float(loss.detach())
            if not math.isfinite(value):
                save(epoch, position)  # the last good state, not the broken one
                raise Seq2SeqError(
                    f"train: the loss became {value} at step {step + 1} (epoch {epoch}); the last good state is "
                    "checkpointed; lower train.learning_rate or train.clip_norm"
                )
            optimizer.zero_grad(set_to_none=True)
            (loss / batch.n_tokens).backward()
            if config.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += value
            token_sum += batch.n_tokens
            epoch_tokens += batch.n_tokens
            window_loss += value
            window_tokens += batch.n_tokens
            if step % config.log_every == 0:
                now = time.perf_counter()
                log(f"epoch {epoch} step {step}/{total_steps} loss {window_loss / window_tokens:.3f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} {window_tokens / (now - window_start):,.0f} tok/s")
                window_loss, window_tokens, window_start = 0.0, 0, now
            if config.checkpoint_every and step % config.checkpoint_every == 0 and position + 1 < len(batches):
                save(epoch, position + 1)
        start_batch = 0
        train_seconds = time.perf_counter() - started
        valid_loss = validation_loss(model, valid_split, config.batch_tokens, device, config.precision)
        bleu, chrf = validation_scores(model, valid_split, valid_references, tgt_tokenizer,
                                       config.valid_bleu_sentences, device)
        record = EpochRecord(
            epoch=epoch, step=step, train_loss=loss_sum / max(token_sum, 1), valid_loss=valid_loss,
            valid_perplexity=math.exp(min(valid_loss, 50.0)), valid_bleu=bleu, valid_chrf=chrf,
            learning_rate=scheduler.get_last_lr()[0],
            teacher_forcing=teacher_forcing_ratio(step, total_steps, config.teacher_forcing_start,
                                                  config.teacher_forcing_end, config.teacher_forcing_schedule),
            tokens_per_second=epoch_tokens / train_seconds, seconds=time.perf_counter() - started,
        )
        history.append(record)
        log("epoch " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in asdict(record).items()))
        on_epoch(record)
        # best_loss holds the chosen metric, sign-flipped where higher is better.
        value = getattr(record, config.best_metric) * (1 if config.best_metric == "valid_loss" else -1)
        if value < best_loss:
            best_loss, best_epoch = value, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        loss_sum, token_sum = 0.0, 0
        save(epoch + 1, 0)
        if config.patience and epoch - best_epoch >= config.patience:
            log(f"train: early stop after epoch {epoch}: {config.best_metric} has not improved for "
                f"{config.patience} epoch(s); keeping epoch {best_epoch}")
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, history, best_epoch, model.num_parameters())
