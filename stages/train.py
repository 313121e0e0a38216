"""train [N]: train the encoder-decoder on data/tokens/ and write the bundle data/model/.

Also writes metrics/train.json (summary) and metrics/train_history.csv (one row per
validation, the curves for ``dvc plots``), and records everything in one MLflow run whose id is
stored in the bundle, so decode and score log into the same run. An interrupted run
(Ctrl-C, kill -9) resumes from data/checkpoints/train/ when the stage is rerun.

``train N`` (stage train_seed@N, N one of train.more_seeds) trains the same model from seed N
instead, into data/seeds/N/model/, data/checkpoints/seeds/N/ and metrics/seeds/N/
(:mod:`seq2seq.params.seeds`).

With ``train.nproc`` > 1 the stage starts itself again under torchrun, one process per rank
(seq2seq.training.distributed); rank 0 does all the writing and logging.
"""
import csv
import io
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from seq2seq.bundle.bundle import save_bundle
from seq2seq.core.atomic import sha256_file, write_json, write_text
from seq2seq.core.devices import check_ranks, resolve_device
from seq2seq.core.errors import Seq2SeqError
from seq2seq.core.guard import run_guarded
from seq2seq.core.mlflow_store import tracking_uri
from seq2seq.core.stage_outputs import REMAKE
from seq2seq.data.clean import read_split, split_head
from seq2seq.data.encoded import load_encoded, split_sha256
from seq2seq.data.resampling import SampledSegmentations
from seq2seq.data.subwords import Tokenizer
from seq2seq.params.config import Params, load_params
from seq2seq.params.seeds import TrainedModel, as_seed, check_ensemble_stages, first_model, seed_from_args, seed_model
from seq2seq.tracking.runs import TrainingRun
from seq2seq.training.checkpoint import fingerprint, remove_checkpoint
from seq2seq.training.distributed import ProcessGroup, join, launched_by_torchrun, leave, run_under_torchrun
from seq2seq.training.trainer import find_checkpoint, train_model

TOKEN_FILES = ("train", "valid", "src.spm.model", "tgt.spm.model")


def main() -> None:
    params = load_params()
    target = first_model(params)
    if sys.argv[1:]:  # one of train.more_seeds
        seed = seed_from_args(params, sys.argv[1:], "train")
        check_ensemble_stages(params)
        params, target = as_seed(params, seed), seed_model(seed)
    check_ranks(params.train.device, params.train.nproc)
    if params.train.nproc > 1 and not launched_by_torchrun():
        status = run_under_torchrun(params.train.nproc, "stages.train", sys.argv[1:])
        if status:
            raise Seq2SeqError(f"one of the {params.train.nproc} training processes (train.nproc) failed; "
                               "its error is above")
        return
    device = resolve_device(params.train.device, "train.device")
    group = join(device)
    try:
        train_this_rank(params, target, device, group)
    finally:
        leave()


def train_this_rank(params: Params, target: TrainedModel, device: torch.device, group: ProcessGroup) -> None:
    # Resumable checkpoints live outside the stage's outputs (DVC deletes outputs before a rerun).
    checkpoints = target.checkpoints
    src_tok = Tokenizer.load("data/tokens/src.spm.model", REMAKE)
    tgt_tok = Tokenizer.load("data/tokens/tgt.spm.model", REMAKE)
    train_split = load_encoded("data/tokens/train")  # memory-mapped
    valid_split = load_encoded("data/tokens/valid")
    valid = read_split("data/clean/valid.tsv")
    train_preview, train_count = split_head("data/clean/train.tsv", 1000)
    if train_count != len(train_split):
        raise Seq2SeqError(f"data/clean/train.tsv has {train_count:,} pairs, data/tokens/train "
                           f"{len(train_split):,}: rerun the tokenize stage (dvc repro tokenize)")
    resegment = None
    if params.train.subword_sampling > 0:  # the text of every pair, segmented anew each epoch
        train_pairs = read_split("data/clean/train.tsv")
        resegment = SampledSegmentations(list(train_pairs["source"]), list(train_pairs["target"]), src_tok, tgt_tok,
                                         params.train.subword_sampling, params.train.seed).epoch
    token_sha = {name: split_sha256(f"data/tokens/{name}") if name in ("train", "valid")
                 else sha256_file(f"data/tokens/{name}") for name in TOKEN_FILES}
    data_sha = token_sha["train"]
    data_id = "+".join(token_sha[name] for name in TOKEN_FILES)
    previous, why = find_checkpoint(checkpoints, params.model, params.train, data_id)
    if not group.is_main:  # the other ranks train their shares; rank 0 logs and writes everything
        train_model(params.model, params.train, train_split, valid_split, list(valid["target"]), src_tok.vocab_size,
                    tgt_tok, device, log=lambda line: None, checkpoint_dir=checkpoints, resume=previous,
                    data_id=data_id, group=group, resegment=resegment)
        return
    print(f"train: {why}", file=sys.stderr, flush=True)
    if group.distributed:
        print(f"train: data parallel over {group.world} processes (torchrun, DDP, "
              f"{torch.distributed.get_backend()})", file=sys.stderr, flush=True)
    started = time.perf_counter()
    resume_run_id = previous["meta"].get("mlflow_run_id") if previous else None
    model_key = fingerprint(params.model, params.train, data_id)
    with TrainingRun(params, data_sha, resume_run_id=resume_run_id, model_key=model_key) as run:
        run.log_dataset(train_preview, Path("data/clean/train.tsv"), sha256_file("data/clean/train.tsv"), "training")
        run.log_dataset(valid, Path("data/clean/valid.tsv"), sha256_file("data/clean/valid.tsv"), "validation")
        result = train_model(params.model, params.train, train_split, valid_split, list(valid["target"]),
                             src_tok.vocab_size, tgt_tok, device, on_validation=run.log_validation,
                             checkpoint_dir=checkpoints, resume=previous, data_id=data_id,
                             checkpoint_meta={"mlflow_run_id": run.run_id or ""}, group=group,
                             resegment=resegment)
        best, last = result.best, result.history[-1]
        train_seconds = sum(r.seconds for r in result.history)
        summary = {
            "best_step": best.step,
            "best_epoch": best.epoch,
            "best_valid_loss": round(best.valid_loss, 4),
            "best_valid_perplexity": round(best.valid_perplexity, 3),
            "best_valid_bleu": round(best.valid_bleu, 2),
            "steps": last.step,
            "epochs": last.epoch,
            "validations": len(result.history),
            "parameters": result.parameters,
            "train_tokens_per_second": round(sum(r.tokens_per_second * r.seconds for r in result.history)
                                             / max(train_seconds, 1e-9)),
            "training_seconds": round(train_seconds, 1),  # validations included, over every resume
            "wall_seconds": round(time.perf_counter() - started, 1),  # this run of the stage
        }
        if result.averaged is not None:
            summary |= {"averaged_validations": result.averaged.validations,
                        "averaged_valid_loss": round(result.averaged.valid_loss, 4),
                        "averaged_valid_bleu": round(result.averaged.valid_bleu, 2),
                        "averaged_kept": result.averaged.kept}
        save_bundle(target.bundle, result.model, src_tok, tgt_tok, {
            "src_lang": params.data.src_lang,
            "tgt_lang": params.data.tgt_lang,
            "mlflow": {"run_id": run.standing_run_id(), "experiment_id": run.experiment_id,
                       "tracking_uri": tracking_uri()},
        })
        write_json(target.summary, summary)
        history = io.StringIO()
        writer = csv.DictWriter(history, fieldnames=list(asdict(result.history[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in result.history)
        write_text(target.history, history.getvalue())
        run.log_summary(summary)
        run.log_file(target.history)
        run.log_model(target.bundle, list(valid["source"][:2]))
    remove_checkpoint(checkpoints)  # the bundle is written: nothing left to resume
    print("train: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


if __name__ == "__main__":
    run_guarded(main, "train")
