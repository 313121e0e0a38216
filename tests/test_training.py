import math

import numpy as np
import pytest
import torch

from seq2seq.data.batching import make_batch, source_tensor
from seq2seq.core.token_ids import PAD_ID
from seq2seq.data.encoded import EncodedSplit
from seq2seq.decoding.torch_backend import max_lengths
from seq2seq.params.config import ModelConfig, TrainConfig
from seq2seq.training.schedules import LearningRateSchedule, lr_factor, teacher_forcing_ratio
from seq2seq.training.step import scheduled_sampling_logits
from seq2seq.training.trainer import train_model
from tests.conftest import synthetic_pairs
from tests.helpers import TINY_MODEL, encode, resumed_mid_epoch_as_straight, tokenizers
from tests.test_search import greedy_search


class DigitTokenizer:
    """Stands in for the target tokenizer where only its vocabulary size matters."""

    vocab_size = 14

    def decode(self, ids):
        return [" ".join(map(str, seq)) for seq in ids]


def reverse_task(n: int, seed: int) -> EncodedSplit:
    rng = np.random.default_rng(seed)
    src = [rng.integers(4, 14, size=rng.integers(2, 6)).astype(np.int32) for _ in range(n)]
    return EncodedSplit(src, [s[::-1].copy() for s in src])


@pytest.mark.parametrize("cell, attention, feeding, epochs, hidden", [
    ("gru", "luong", False, 8, 64), ("lstm", "luong", False, 8, 64),
    ("gru", "bahdanau", False, 8, 64), ("lstm", "bahdanau", True, 8, 64), ("gru", "luong", True, 8, 64),
    ("gru", "none", False, 20, 128), ("lstm", "none", False, 20, 128),
])
def test_learns_to_reverse_sequences(cell, attention, feeding, epochs, hidden):
    """A real learning test: after training, greedy output reverses unseen inputs."""
    train, test = reverse_task(3000, 0), reverse_task(200, 1)
    model_cfg = ModelConfig(cell=cell, attention=attention, input_feeding=feeding, embedding_size=32,
                            hidden_size=hidden, dropout=0.0, tie_embeddings=False)
    cfg = TrainConfig(epochs=epochs, batch_tokens=600, learning_rate=0.005, warmup_steps=20, label_smoothing=0.0,
                      valid_bleu_sentences=0, threads=2, seed=3)
    result = train_model(model_cfg, cfg, train, test, [], 14, DigitTokenizer(), torch.device("cpu"),
                         log=lambda line: None)
    src, lengths = source_tensor(test.src)
    hyps = greedy_search(result.model, src, lengths, max_lengths(lengths - 1, 1.5, 3))
    exact = np.mean([h.tokens == t.tolist() for h, t in zip(hyps, test.tgt)])
    assert exact >= 0.95, exact
    assert result.history[-1].valid_loss < result.history[0].valid_loss


def test_same_seed_same_weights_and_curve():
    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=2, batch_tokens=200, valid_bleu_sentences=20, threads=1)

    def once():
        return train_model(TINY_MODEL, cfg, split, split, [b for _, b in pairs], src_tok.vocab_size, tgt_tok,
                           torch.device("cpu"), log=lambda line: None)

    a, b = once(), once()
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.valid_bleu for r in a.history] == [r.valid_bleu for r in b.history]
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name
    record = a.history[-1]
    assert math.isclose(record.valid_perplexity, math.exp(record.valid_loss), rel_tol=1e-9)
    assert 0 <= record.valid_bleu <= 100


def test_subword_sampling_trains_each_epoch_on_its_own_segmentation_reproducibly():
    from seq2seq.data.resampling import SampledSegmentations

    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    sampled = SampledSegmentations([a for a, _ in pairs], [b for _, b in pairs], src_tok, tgt_tok, 0.1, seed=3)
    seen: list[int] = []

    def resegment(epoch: int) -> EncodedSplit:
        seen.append(epoch)
        return sampled.epoch(epoch)

    cfg = TrainConfig(epochs=3, batch_tokens=200, valid_bleu_sentences=0, threads=1)

    def once(resegment=None):
        return train_model(TINY_MODEL, cfg, split, split, [b for _, b in pairs], src_tok.vocab_size, tgt_tok,
                           torch.device("cpu"), log=lambda line: None, resegment=resegment)

    a, b, fixed = once(resegment), once(sampled.epoch), once()
    assert seen == [1, 2, 3]  # drawn once per epoch (epoch 1's at the start sizes the schedule)
    one, two = sampled.epoch(1), sampled.epoch(2)
    assert [t.tolist() for t in one.tgt] != [t.tolist() for t in two.tgt]
    assert tgt_tok.decode(one.tgt) == tgt_tok.decode(split.tgt)  # the same sentences, other pieces
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.train_loss for r in a.history] != [r.train_loss for r in fixed.history]
    for name, x in a.model.state_dict().items():
        assert torch.equal(x, b.model.state_dict()[name]), name


def test_subword_sampling_resumes_mid_epoch_to_the_same_weights(tmp_path, monkeypatch):
    """A run resumed from a checkpoint in its second epoch sees that epoch's segmentation again."""
    from seq2seq.data.resampling import SampledSegmentations

    def sampled(pairs, src_tok, tgt_tok):
        return SampledSegmentations([a for a, _ in pairs], [b for _, b in pairs], src_tok, tgt_tok, 0.1,
                                    seed=3).epoch

    cfg = TrainConfig(epochs=3, batch_tokens=200, valid_bleu_sentences=0, threads=1, checkpoint_every=5)
    resumed_mid_epoch_as_straight(cfg, tmp_path, monkeypatch, resegment=sampled)


def test_lr_schedule():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100, 0.0) == pytest.approx(0.5)


def test_teacher_forcing_schedules():
    assert teacher_forcing_ratio(0, 100, 1.0, 1.0, "linear") == 1.0
    assert teacher_forcing_ratio(50, 100, 1.0, 0.5, "linear") == pytest.approx(0.75)
    assert teacher_forcing_ratio(100, 100, 1.0, 0.5, "linear") == pytest.approx(0.5)
    curve = [teacher_forcing_ratio(s, 1000, 1.0, 0.25, "inverse_sigmoid") for s in range(0, 1001, 50)]
    assert curve == sorted(curve, reverse=True)  # never goes back up
    assert curve[0] > 0.99 and curve[-1] < 0.3
    assert teacher_forcing_ratio(500, 1000, 1.0, 0.0, "inverse_sigmoid") == pytest.approx(0.5, abs=1e-3)


def test_full_teacher_forcing_step_by_step_equals_fast_path():
    """Ratio 1.0 via the scheduled-sampling loop (forced by a ratio just under 1 with no draws
    below it) gives the one-call logits; a ratio of 0 feeds the model's own greedy tokens."""
    from tests.test_model import tiny

    model = tiny("gru")
    batch = make_batch([np.array([5, 6, 7]), np.array([8])], [np.array([9, 10, 11]), np.array([12, 13])])
    with torch.no_grad():
        fast = model.generator(model(batch.src, batch.src_lengths, batch.prev_tokens))
        stepwise = scheduled_sampling_logits(model, batch, 1.0 - 1e-12)  # torch.rand < 1 - 1e-12: gold everywhere
        assert torch.allclose(fast, stepwise, atol=1e-5)
        own = scheduled_sampling_logits(model, batch, 0.0)
        tokens = own.argmax(-1)[:, :-1]
        fed = torch.cat([batch.prev_tokens[:, :1], torch.where(batch.prev_tokens[:, 1:] == PAD_ID,
                                                               batch.prev_tokens[:, 1:], tokens)], dim=1)
        expected = model.generator(model(batch.src, batch.src_lengths, fed))
    assert torch.allclose(own, expected, atol=1e-5)


def test_scheduled_sampling_still_learns():
    train, test = reverse_task(3000, 0), reverse_task(200, 1)
    model_cfg = ModelConfig(cell="gru", embedding_size=32, hidden_size=64, dropout=0.0, tie_embeddings=False)
    cfg = TrainConfig(epochs=8, batch_tokens=600, learning_rate=0.005, warmup_steps=20, label_smoothing=0.0,
                      valid_bleu_sentences=0, threads=2, seed=3, teacher_forcing_start=1.0,
                      teacher_forcing_end=0.5, teacher_forcing_schedule="linear")
    result = train_model(model_cfg, cfg, train, test, [], 14, DigitTokenizer(), torch.device("cpu"),
                         log=lambda line: None)
    assert result.history[-1].teacher_forcing == pytest.approx(0.5)
    src, lengths = source_tensor(test.src)
    hyps = greedy_search(result.model, src, lengths, max_lengths(lengths - 1, 1.5, 3))
    assert np.mean([h.tokens == t.tolist() for h, t in zip(hyps, test.tgt)]) >= 0.95


def test_early_stopping_keeps_the_best_epoch():
    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    # a valid split the model cannot learn (targets unrelated to sources): valid loss soon stops improving
    noise = encode(list(zip([a for a, _ in pairs], reversed([b for _, b in pairs]))), src_tok, tgt_tok)
    cfg = TrainConfig(epochs=30, batch_tokens=200, valid_bleu_sentences=0, threads=1, patience=2,
                      learning_rate=0.01, warmup_steps=1)
    lines = []
    result = train_model(TINY_MODEL, cfg, split, noise, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                         log=lines.append)
    assert len(result.history) < 30
    assert len(result.history) - 1 - result.best_index == 2
    assert result.best.valid_loss == min(r.valid_loss for r in result.history)
    assert any("early stop" in line for line in lines)
    # the returned model has the best validation's weights: its valid loss is that one
    from seq2seq.training.trainer import validation_loss
    assert validation_loss(result.model, noise, 200, torch.device("cpu"), "fp32") == pytest.approx(
        result.best.valid_loss, rel=1e-6)


def test_validation_every_n_steps_and_at_the_end():
    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=2, batch_tokens=200, valid_bleu_sentences=0, threads=1, validate_every=7)
    result = train_model(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                         log=lambda line: None)
    steps = [r.step for r in result.history]
    total = steps[-1]
    assert steps == list(range(7, total, 7)) + [total] and total % 7 != 0  # every 7 steps, plus the last step
    assert [r.epoch for r in result.history] == sorted(r.epoch for r in result.history)
    assert {r.epoch for r in result.history} == {1, 2}
    per_epoch = train_model(TINY_MODEL, TrainConfig(epochs=2, batch_tokens=200, valid_bleu_sentences=0, threads=1),
                            split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"), log=lambda line: None)
    assert [r.epoch for r in per_epoch.history] == [1, 2] and per_epoch.history[-1].step == total
    # validating more often changes nothing in training itself: the last weights are the same
    assert per_epoch.history[-1].valid_loss == pytest.approx(result.history[-1].valid_loss, rel=1e-6)


def test_plateau_schedule_cuts_after_patience_down_to_the_floor():
    schedule = LearningRateSchedule("plateau", warmup=2, total_steps=100, floor=0.2, cut=0.5, patience=2)
    assert schedule.factor(0) == pytest.approx(0.5) and schedule.factor(50) == 1.0
    assert [schedule.observe(v) for v in (3.0, 2.0, 2.5, 2.1)] == [False, False, False, True]
    assert schedule.factor(50) == 0.5
    assert [schedule.observe(v) for v in (1.0, 1.5, 1.5)] == [False, False, True]
    assert schedule.factor(50) == 0.25
    assert [schedule.observe(v) for v in (2.0, 2.0, 2.0, 2.0)] == [False, True, False, False]
    assert schedule.factor(50) == 0.2  # never below the floor
    restored = LearningRateSchedule("plateau", warmup=2, total_steps=100, floor=0.2)
    restored.load_state_dict(schedule.state_dict())
    assert restored.factor(50) == 0.2 and restored.best == 1.0
    linear = LearningRateSchedule("linear", warmup=10, total_steps=100, floor=0.1)
    assert not linear.observe(5.0) and linear.factor(100) == pytest.approx(0.1)
    assert LearningRateSchedule("constant", warmup=0, total_steps=100, floor=0.1).factor(99) == 1.0


def test_plateau_schedule_cuts_the_rate_when_validation_stalls():
    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    noise = encode(list(zip([a for a, _ in pairs], reversed([b for _, b in pairs]))), src_tok, tgt_tok)
    cfg = TrainConfig(epochs=12, batch_tokens=200, valid_bleu_sentences=0, threads=1, lr_schedule="plateau",
                      plateau_factor=0.5, plateau_patience=1, final_lr_fraction=0.1, learning_rate=0.01,
                      warmup_steps=1)
    lines = []
    result = train_model(TINY_MODEL, cfg, split, noise, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                         log=lines.append)
    rates = [r.learning_rate for r in result.history]
    assert rates[0] == pytest.approx(0.01) and rates[-1] < 0.01 and min(rates) >= 0.001 - 1e-12
    assert all(b in (a, pytest.approx(a / 2), pytest.approx(0.001)) for a, b in zip(rates, rates[1:]))
    assert any("learning rate cut" in line for line in lines)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import seq2seq.training.step as training
    from seq2seq.core.errors import Seq2SeqError
    from seq2seq.training.checkpoint import CHECKPOINT_FILE

    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    real, calls = training.batch_loss, []

    def breaks_at_the_fourth_step(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 4 else loss

    monkeypatch.setattr(training, "batch_loss", breaks_at_the_fourth_step)
    cfg = TrainConfig(epochs=1, batch_tokens=200, valid_bleu_sentences=0, threads=1, checkpoint_every=2)
    with pytest.raises(Seq2SeqError) as info:
        train_model(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                    log=lambda line: None, checkpoint_dir=tmp_path, data_id="x")
    message = str(info.value)
    assert "the loss became nan at step 4" in message and "lower train.learning_rate" in message
    saved = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert saved["progress"]["step"] == 3  # the last good state, not the broken step
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_snapshots_keep_every_validations_weights_and_a_fresh_run_clears_them(tmp_path):
    from seq2seq.training.checkpoint import list_snapshots

    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=2, batch_tokens=200, valid_bleu_sentences=0, threads=1, validate_every=9,
                      snapshots=True)
    result = train_model(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                         log=lambda line: None, checkpoint_dir=tmp_path)
    snapshots = [torch.load(p, weights_only=True) for p in list_snapshots(tmp_path)]
    assert [s["step"] for s in snapshots] == [r.step for r in result.history]
    assert [s["seconds"] for s in snapshots] == pytest.approx(
        [sum(r.seconds for r in result.history[: i + 1]) for i in range(len(result.history))])
    best = snapshots[result.best_index]["model"]
    assert all(torch.equal(best[k], v) for k, v in result.model.state_dict().items())
    first, last = snapshots[0]["model"], snapshots[-1]["model"]
    assert any(not torch.equal(first[k], last[k]) for k in first)  # each snapshot holds its own weights
    # the same params without snapshots: the same weights (snapshots change nothing in training)
    plain = train_model(TINY_MODEL, TrainConfig(**{**cfg.__dict__, "snapshots": False}), split, split, [],
                        src_tok.vocab_size, tgt_tok, torch.device("cpu"), log=lambda line: None)
    assert all(torch.equal(plain.model.state_dict()[k], v) for k, v in result.model.state_dict().items())
    train_model(TINY_MODEL, TrainConfig(**{**cfg.__dict__, "epochs": 1, "validate_every": 0}), split, split, [],
                src_tok.vocab_size, tgt_tok, torch.device("cpu"), log=lambda line: None, checkpoint_dir=tmp_path)
    assert len(list_snapshots(tmp_path)) == 1  # a fresh run starts without the earlier run's snapshots


def test_average_of_the_last_validations_is_validated_and_kept_only_if_better(tmp_path):
    from seq2seq.training.checkpoint import list_snapshots
    from seq2seq.training.trainer import validation_loss

    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=2, batch_tokens=200, valid_bleu_sentences=0, threads=1, validate_every=6,
                      snapshots=True, average_last=3)
    result = train_model(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                         log=lambda line: None, checkpoint_dir=tmp_path)
    last3 = [torch.load(p, weights_only=True)["model"] for p in list_snapshots(tmp_path)[-3:]]
    mean = {k: sum(s[k] for s in last3) / 3 for k in last3[0]}
    averaged = result.averaged
    assert averaged is not None and averaged.validations == 3
    assert averaged.kept == (averaged.valid_loss < result.best.valid_loss)
    expected = mean if averaged.kept else torch.load(list_snapshots(tmp_path)[result.best_index],
                                                      weights_only=True)["model"]
    for name, tensor in result.model.state_dict().items():
        assert torch.allclose(tensor, expected[name], atol=1e-6), name
    assert validation_loss(result.model, split, 200, torch.device("cpu"), "fp32") == pytest.approx(
        averaged.valid_loss if averaged.kept else result.best.valid_loss, rel=1e-5)
    plain = train_model(TINY_MODEL, TrainConfig(**{**cfg.__dict__, "average_last": 0}), split, split, [],
                        src_tok.vocab_size, tgt_tok, torch.device("cpu"), log=lambda line: None)
    assert plain.averaged is None


def test_resumed_kept_weights_go_back_to_the_models_device():
    """A checkpoint loads onto the CPU; on a GPU the restored best and recent weights must go back to
    the model's device, or averaging them with later validations' (on the GPU) fails at the end of
    the run. (A meta device stands in for the GPU: it carries the device, no data.)"""
    from dataclasses import asdict

    from seq2seq.training.trainer import Trainer

    pairs = synthetic_pairs(60)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=1, batch_tokens=200, valid_bleu_sentences=0, threads=1, average_last=3)
    trainer = Trainer(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                      lambda record: None, lambda line: None, None, "fp", {})
    weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    checkpoint = {"fingerprint": "fp", "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                  "schedule": trainer.schedule.state_dict(), "rng": torch.get_rng_state(), "cuda_rng": [],
                  "progress": asdict(trainer.progress), "best_state": weights, "recent_states": [weights, weights]}
    trainer.device = torch.device("meta")
    trainer.restore(checkpoint)
    kept = [trainer.best_state, *trainer.recent_states]
    assert len(kept) == 3 and all(t.device.type == "meta" for state in kept for t in state.values())


@pytest.mark.parametrize("cell, attention, feeding", [
    ("lstm", "none", False), ("lstm", "luong", False), ("lstm", "bahdanau", True), ("gru", "bahdanau", True),
    ("gru", "luong", False), ("gru", "none", False),
])
def test_bf16_training_runs_every_architecture(cell, attention, feeding):
    """train.precision: bf16 (autocast) trains each cell and attention, batches of mixed source lengths
    included (under autocast an LSTM returns bf16 and a GRU fp32: the encoder must take either)."""
    train, valid = reverse_task(300, 0), reverse_task(40, 1)
    assert len({len(s) for s in train.src}) > 1
    model_cfg = ModelConfig(cell=cell, attention=attention, input_feeding=feeding, embedding_size=16,
                            hidden_size=16, dropout=0.1, tie_embeddings=False)
    cfg = TrainConfig(epochs=2, batch_tokens=300, learning_rate=0.005, warmup_steps=5, valid_bleu_sentences=10,
                      threads=1, seed=3, precision="bf16")
    result = train_model(model_cfg, cfg, train, valid, [" ".join(map(str, t)) for t in valid.tgt[:10]], 14,
                         DigitTokenizer(), torch.device("cpu"), log=lambda line: None)
    losses = [r.valid_loss for r in result.history]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


@pytest.mark.parametrize("model_config", [
    TINY_MODEL,
    ModelConfig(cell="lstm", attention="bahdanau", input_feeding=True, embedding_size=16, hidden_size=16),
    ModelConfig(cell="lstm", attention="luong", bidirectional=True, embedding_size=16, hidden_size=16),
], ids=["default", "joey", "luong-bi"])
def test_a_gpu_training_step_waits_for_the_device_once(model_config, monkeypatch):
    """The training step as it runs on a GPU (no CPU fast paths, the encoder packed with rows sorted
    on the host, word dropout on) run on the meta device, where any read of a tensor's value fails
    (``float``, ``.item()``, ``.tolist()``, ``nonzero``, ``bool``): the only read left is the one
    :class:`OnHost` makes per step, for the loss."""
    from seq2seq.core import devices
    from seq2seq.training.trainer import Trainer

    pairs = synthetic_pairs(60)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    assert len({len(s) for s in split.src}) > 1  # batches with padding: the packed encoder runs
    cfg = TrainConfig(epochs=1, batch_tokens=200, valid_bleu_sentences=0, threads=1, word_dropout=0.1)
    trainer = Trainer(model_config, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("meta"),
                      lambda record: None, lambda line: None, None, "fp", {})
    reads = []
    monkeypatch.setattr(devices.OnHost, "value", lambda self: reads.append(self) or 1.0)
    for indices in trainer._order(1)[:3]:
        trainer.train_step(trainer.host_batch(split, indices))
    assert len(reads) == 3 and trainer.progress.step == 3


def test_batches_made_ahead_on_a_thread_train_the_same_weights():
    """A GPU's batches are made ahead on a background thread: the same batches in the same order,
    so the same weights bit for bit as batches made when taken (run here on the CPU)."""
    from seq2seq.training.trainer import Trainer

    pairs = synthetic_pairs(200)
    src_tok, tgt_tok = tokenizers(pairs)
    split = encode(pairs, src_tok, tgt_tok)
    cfg = TrainConfig(epochs=2, batch_tokens=200, valid_bleu_sentences=0, threads=1, word_dropout=0.1)

    def weights(ahead: int):
        trainer = Trainer(TINY_MODEL, cfg, split, split, [], src_tok.vocab_size, tgt_tok, torch.device("cpu"),
                          lambda record: None, lambda line: None, None, "fp", {})
        trainer.batches_ahead = ahead
        return trainer.run().model.state_dict()

    plain, ahead = weights(0), weights(2)
    for name in plain:
        assert torch.equal(plain[name], ahead[name]), name


def test_the_moving_average_of_the_weights_follows_its_formula():
    """average = d * average + (1 - d) * weights after each step, d = min(decay, (1 + step) / (10 + step));
    swapped in, the model holds the average, and its own weights again after."""
    from seq2seq.training.moving_average import MovingAverage

    model = torch.nn.Linear(3, 2)
    average = MovingAverage(model, 0.5)
    expected = [p.detach().clone() for p in model.parameters()]
    for step in (1, 2, 30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(step)
        d = min(0.5, (1 + step) / (10 + step))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, model.parameters())]
    own = [p.detach().clone() for p in model.parameters()]
    with average.swapped_in():
        for p, e in zip(model.parameters(), expected):
            assert torch.allclose(p, e, atol=1e-6)
    assert all(torch.equal(p, o) for p, o in zip(model.parameters(), own))
    assert set(average.state_dict()) == {"weight", "bias"}


def test_a_run_with_a_moving_average_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """train.ema_decay: the kept weights are the average (not the trained ones), validated as such, and a
    run resumed mid-epoch ends bit for bit where an uninterrupted one does."""
    cfg = TrainConfig(epochs=3, batch_tokens=200, valid_bleu_sentences=0, threads=1, checkpoint_every=5,
                      ema_decay=0.9)
    straight, _, train = resumed_mid_epoch_as_straight(cfg, tmp_path, monkeypatch)
    plain = train(tmp_path / "plain", config=TrainConfig(**{**cfg.__dict__, "ema_decay": 0.0}))
    assert [r.train_loss for r in plain.history] == [r.train_loss for r in straight.history]  # training alike
    assert [r.valid_loss for r in plain.history] != [r.valid_loss for r in straight.history]  # validated: not
    kept = straight.model.state_dict()
    assert any(not torch.equal(v, kept[k]) for k, v in plain.model.state_dict().items())


def test_epochs_of_a_fixed_number_of_steps_run_on_through_the_passes_and_resume_exactly(tmp_path, monkeypatch):
    """train.epoch_steps: a validation every N steps, the batches going on across passes over the data
    (one pass over 200 pairs here is 36 batches, an epoch 10), and a run resumed inside an epoch
    ends bit for bit where an uninterrupted one does."""
    cfg = TrainConfig(epochs=8, epoch_steps=10, batch_tokens=200, valid_bleu_sentences=0, threads=1,
                      checkpoint_every=5)
    straight, _, train = resumed_mid_epoch_as_straight(cfg, tmp_path, monkeypatch)
    assert [r.step for r in straight.history] == list(range(10, 81, 10))
    plain = train(tmp_path / "plain", config=TrainConfig(**{**cfg.__dict__, "epoch_steps": 0, "epochs": 2}))
    one_pass = plain.history[0].step
    assert 10 < one_pass < 80 // 2  # the epochs cross passes, more than two of them
    same = train(tmp_path / "same", config=TrainConfig(**{**cfg.__dict__, "epoch_steps": one_pass, "epochs": 2}))
    assert [r.train_loss for r in same.history] == [r.train_loss for r in plain.history]
    assert all(torch.equal(v, plain.model.state_dict()[k]) for k, v in same.model.state_dict().items())
