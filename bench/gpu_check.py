"""The GPU check: every GPU path of the project run once, timed, on the machine at hand.

    bash bench/gpu_check.sh             # on a CUDA GPU (sized for under 5 minutes on one H100; not yet run)
    bash bench/gpu_check.sh --dry-run   # anywhere: every step on the CPU, tiny sizes (seconds)

Reads only the working tree (or ``--project DIR``): params.yaml and the tokenize stage's outputs
of the default data (data/tokens/, and data/clean/valid.tsv for the sentences to decode;
`dvc repro tokenize` makes them). Steps:

1. versions: torch, CUDA, cuDNN, the GPU and the CPU;
2. training, the default model (params.yaml) and a Joey NMT configuration (LSTM, Bahdanau
   attention, input feeding), each in fp32 and bf16 for the same steps: target tokens/s, the
   host synchronisations per step that ``torch.cuda.set_sync_debug_mode`` reports (outside the
   one designed wait, an event, which it does not count), validation loss at the end;
3. resume: a run stopped at a mid-epoch checkpoint and resumed ends with the same weights as one
   straight through (train.deterministic on);
4. decoding: beam 5 over the valid sentences on the GPU and on the CPU: sentences/s, the share of
   identical translations;
5. export: the GPU-trained model exported to ONNX and translated by the ONNX Runtime translator;
6. DDP: the training step wrapped in DistributedDataParallel on a one-rank nccl group (gloo in a
   dry run), its loss summed through the group;
7. the one-line error a user gets asking for ``cuda`` where there is none (CUDA hidden).

Writes a Markdown report (``--out``, default docs/results/gpu_check.md, or
docs/results/gpu_check_dry_run.md with ``--dry-run``).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seq2seq.data.clean import read_split  # noqa: E402
from seq2seq.data.encoded import EncodedSplit, load_encoded  # noqa: E402
from seq2seq.data.subwords import Tokenizer  # noqa: E402
from seq2seq.decoding.torch_backend import translate_ids  # noqa: E402
from seq2seq.params.config import ModelConfig, TrainConfig, load_params  # noqa: E402
from seq2seq.search.settings import SearchSettings  # noqa: E402
from seq2seq.training import trainer as trainer_module  # noqa: E402
from seq2seq.training.checkpoint import CHECKPOINT_FILE  # noqa: E402
from seq2seq.training.distributed import ProcessGroup  # noqa: E402
from seq2seq.training.precision import numerics  # noqa: E402
from seq2seq.training.trainer import Trainer, validation_loss  # noqa: E402

JOEY_MODEL = ModelConfig(cell="lstm", embedding_size=256, hidden_size=256, encoder_hidden_size=512, layers=1,
                         bidirectional=True, attention="bahdanau", input_feeding=True, dropout=0.2,
                         tie_embeddings=False)


class Sizes:
    """How much each step does: the real check, or the dry run's few steps."""

    def __init__(self, dry_run: bool) -> None:
        self.warmup, self.steps = (2, 6) if dry_run else (30, 300)
        self.resume_pairs, self.decode_sentences = (600, 40) if dry_run else (4000, 1000)
        self.tiny_model = dry_run


def subset(split: EncodedSplit, count: int) -> EncodedSplit:
    return EncodedSplit(split.src[:count], split.tgt[:count])


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def versions(report: Report, device: torch.device) -> None:
    report.add("## Versions")
    report.add()
    report.add(f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    report.add(f"- device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    report.add(f"- CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"{torch.backends.cpu.get_cpu_capability()}")
    report.add()


def make_trainer(model: ModelConfig, config: TrainConfig, data: dict, device: torch.device,
                 group: ProcessGroup = ProcessGroup(), checkpoints: Path | None = None) -> Trainer:
    return Trainer(model, config, data["train"], data["valid"], data["valid_refs"], data["src"].vocab_size,
                   data["tgt"], device, lambda record: None, lambda line: None, checkpoints, "gpu-check", {},
                   group)


def timed_steps(trainer: Trainer, sizes: Sizes, device: torch.device) -> tuple[float, float]:
    """Target tokens/s and counted host synchronisations per step over ``sizes.steps`` steps."""
    split = trainer.split(1)
    order = trainer._order(1)
    needed = sizes.warmup + sizes.steps
    order = (order * (needed // max(len(order), 1) + 1))[:needed]
    trainer.progress.precision = trainer.progress.precision or trainer.pick_precision()
    trainer.model.train()
    for indices in order[:sizes.warmup]:
        trainer.train_step(trainer.host_batch(split, indices))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
    started, tokens = time.perf_counter(), 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for indices in order[sizes.warmup:]:
            tokens += trainer.train_step(trainer.host_batch(split, indices))[0]
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode(0)
            torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    synced = sum("synchroniz" in str(w.message) for w in caught)
    return tokens / seconds, synced / sizes.steps


def training(report: Report, data: dict, params, device: torch.device, sizes: Sizes) -> Trainer:
    """Step 2; returns the default model's fp32 trainer (its model is decoded and exported next)."""
    report.add("## Training")
    report.add()
    report.add(f"{sizes.steps} steps after {sizes.warmup} warm-up steps, batch_tokens {params.train.batch_tokens}, "
               "the same batches in each precision.")
    report.add()
    report.add("| model | precision | target tokens/s | host syncs/step (counted) | valid loss after |")
    report.add("| --- | --- | ---: | ---: | ---: |")
    kept = None
    models = {"default": params.model, "joey": JOEY_MODEL}
    if sizes.tiny_model:
        models = {name: replace(m, embedding_size=32, hidden_size=32, encoder_hidden_size=0 if name == "default"
                                else 64) for name, m in models.items()}
    for name, model in models.items():
        for precision in ("fp32", "bf16"):
            if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
                continue
            config = replace(params.train, precision=precision, valid_bleu_sentences=0, nproc=1,
                             device=str(device))
            trainer = make_trainer(model, config, data, device)
            with numerics(precision, False, device):
                speed, syncs = timed_steps(trainer, sizes, device)
                loss = validation_loss(trainer.model, data["valid"], config.batch_tokens, device, precision)
            counted = f"{syncs:.2f}" if device.type == "cuda" else "n/a (CPU)"
            report.add(f"| {name} | {precision} | {speed:,.0f} | {counted} | {loss:.4f} |")
            if name == "default" and precision == "fp32":
                kept = trainer
                default_speed = speed
    tokens = sum(len(t) + 1 for t in data["train_full"].tgt) * params.train.epochs
    report.add()
    if sizes.tiny_model:
        report.add("Dry run: both models shrunk to 32 units and a few steps, so the speeds above say nothing of "
                   "the real ones.")
    else:
        report.add(f"The default run trains {tokens:,} target tokens ({params.train.epochs} epochs): about "
                   f"{tokens / default_speed / 60:.1f} minutes at the default model's fp32 speed above.")
    report.add()
    assert kept is not None
    return kept


def resume(report: Report, data: dict, params, device: torch.device, sizes: Sizes) -> None:
    """Step 3: stopped mid-epoch 2 and resumed equals straight through."""
    small = dict(data, train=subset(data["train"], sizes.resume_pairs))
    model = replace(params.model, embedding_size=32, hidden_size=32) if sizes.tiny_model else params.model
    config = replace(params.train, epochs=2, valid_bleu_sentences=0, deterministic=True, precision="fp32", nproc=1)
    per_epoch = make_trainer(model, config, small, device).steps_per_epoch
    config = replace(config, checkpoint_every=per_epoch // 2 + 1)  # its second multiple falls inside epoch 2
    saved: list[Path] = []
    real_save = trainer_module.save_checkpoint

    def keep_first_mid_epoch_2(folder: Path, payload: dict) -> None:
        real_save(folder, payload)
        progress = payload["progress"]
        if progress["epoch"] == 2 and progress["batch"] > 0 and not saved:
            saved.append(folder.parent / "mid.pt")
            shutil.copy(folder / CHECKPOINT_FILE, saved[0])

    with tempfile.TemporaryDirectory() as tmp:
        trainer_module.save_checkpoint = keep_first_mid_epoch_2
        try:
            straight = make_trainer(model, config, small, device, checkpoints=Path(tmp) / "a").run().model
        finally:
            trainer_module.save_checkpoint = real_save
        (Path(tmp) / "b").mkdir()
        shutil.copy(saved[0], Path(tmp) / "b" / CHECKPOINT_FILE)
        again = make_trainer(model, config, small, device, checkpoints=Path(tmp) / "b")
        again.restore(torch.load(Path(tmp) / "b" / CHECKPOINT_FILE, map_location="cpu", weights_only=False))
        resumed = again.run().model
    same = all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
    report.add("## Resume")
    report.add()
    report.add(f"Stopped at a mid-epoch-2 checkpoint and resumed (train.deterministic on, {sizes.resume_pairs} "
               f"pairs, 2 epochs): weights {'identical' if same else 'DIFFERENT'} to the run straight through.")
    report.add()


def decoding(report: Report, trainer: Trainer, data: dict, device: torch.device, sizes: Sizes) -> None:
    """Step 4: beam 5 on the device and on the CPU."""
    sources = data["valid_ids"][:sizes.decode_sentences]
    settings = SearchSettings(beam=5, batch_size=128)
    rows, outputs = [], []
    for label, where in ((f"device ({device})", device), ("cpu", torch.device("cpu"))):
        model = copy.deepcopy(trainer.model).to(where).eval()
        translate_ids(model, sources[:16], settings, where)  # warm-up
        if where.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        hyps = translate_ids(model, sources, settings, where)
        if where.type == "cuda":
            torch.cuda.synchronize()
        rows.append(f"| {label} | {len(sources) / (time.perf_counter() - started):,.1f} |")
        outputs.append([h[0].tokens for h in hyps])
    same = sum(a == b for a, b in zip(*outputs)) / len(sources)
    report.add("## Decoding")
    report.add()
    report.add(f"Beam 5, {len(sources)} valid sentences, batches of 128, the default model trained above.")
    report.add()
    report.add("| where | sentences/s |")
    report.add("| --- | ---: |")
    for row in rows:
        report.add(row)
    report.add()
    report.add(f"Identical translations on both: {same:.1%}.")
    report.add()


def export(report: Report, trainer: Trainer, data: dict) -> None:
    """Step 5: the GPU-trained model through ONNX and the torch-free runtime."""
    from seq2seq.bundle.bundle import save_bundle
    from seq2seq.export.onnx_export import export_onnx
    from seq2seq.runtime.translator import OnnxTranslator

    model = copy.deepcopy(trainer.model).cpu().eval()
    with tempfile.TemporaryDirectory() as tmp:
        save_bundle(Path(tmp) / "model", model, data["src"], data["tgt"], {"src_lang": "en", "tgt_lang": "es"})
        export_onnx(Path(tmp) / "model", Path(tmp) / "onnx")
        translator = OnnxTranslator.load(Path(tmp) / "onnx")
        sources = list(data["valid_text"][:5])
        translations = translator.translate(sources)
    report.add("## Export")
    report.add()
    report.add(f"Exported to ONNX (checked against PyTorch by the export) and translated by the ONNX Runtime "
               f"translator: {len(translations)} sentences, e.g. {sources[0]!r} -> {translations[0]!r}.")
    report.add()


class OneRankGroup(ProcessGroup):
    """A one-rank group that still takes the distributed code path (DDP, the summed loss)."""

    @property
    def distributed(self) -> bool:
        return True


def ddp(report: Report, data: dict, params, device: torch.device, sizes: Sizes) -> None:
    """Step 6: DDP on a one-rank group (nccl on CUDA)."""
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29541")
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        model = replace(params.model, embedding_size=32, hidden_size=32) if sizes.tiny_model else params.model
        config = replace(params.train, valid_bleu_sentences=0, nproc=1, precision="fp32")
        group = OneRankGroup(0, 1, device if device.type == "cuda" else torch.device("cpu"))
        trainer = make_trainer(model, config, data, device, group)
        trainer.progress.precision = "fp32"
        split = trainer.split(1)
        losses = [trainer.train_step(trainer.host_batch(split, b))[1] for b in trainer._order(1)[:3]]
        wrapped = type(trainer.loss).__name__
    finally:
        dist.destroy_process_group()
    report.add("## DDP")
    report.add()
    report.add(f"{wrapped} over a one-rank {backend} group: 3 steps, summed losses "
               f"{', '.join(f'{x:.1f}' for x in losses)}.")
    report.add()


def missing_cuda_error(report: Report) -> None:
    """Step 7: train.device cuda with CUDA hidden."""
    code = ("from seq2seq.core.guard import run_guarded\n"
            "from seq2seq.core.devices import resolve_device\n"
            "run_guarded(lambda: resolve_device('cuda', 'train.device'), 'train')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    report.add("## No GPU")
    report.add()
    report.add(f"`train.device: cuda` with CUDA hidden: exit status {done.returncode}, "
               f"{len(done.stderr.strip().splitlines())} line: `{done.stderr.strip()}`")
    report.add()


def load_data(root: Path, dry_run: bool) -> dict:
    tokens = root / "data/tokens"
    needed = [tokens / n for n in ("train", "valid", "src.spm.model", "tgt.spm.model")]
    needed.append(root / "data/clean/valid.tsv")
    missing = [str(p.relative_to(root)) for p in needed if not p.exists()]
    if missing:
        raise SystemExit(f"gpu_check: {', '.join(missing)} missing: run `dvc repro tokenize` first (or bring "
                         "data/tokens/ and data/clean/ from a machine that has run it)")
    train = load_encoded(tokens / "train")
    valid = load_encoded(tokens / "valid")
    valid_text = read_split(root / "data/clean/valid.tsv")
    small = 2000 if dry_run else len(train)
    return {"train_full": train, "train": subset(train, small), "valid": subset(valid, 200 if dry_run else 2000),
            "valid_refs": list(valid_text["target"]), "valid_text": list(valid_text["source"]),
            "valid_ids": [s.tolist() for s in valid.src],
            "src": Tokenizer.load(tokens / "src.spm.model"), "tgt": Tokenizer.load(tokens / "tgt.spm.model")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU, tiny sizes")
    parser.add_argument("--out", type=Path, help="the report (default docs/results/gpu_check[_dry_run].md)")
    parser.add_argument("--project", type=Path, default=ROOT,
                        help="where params.yaml, data/tokens/ and data/clean/ are (default: this project)")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU here; run it on a GPU machine (with a CUDA build of "
                         "torch), or with --dry-run to try every step on the CPU")
    device = torch.device("cpu") if args.dry_run else torch.device("cuda")
    out = args.out or ROOT / "docs/results" / ("gpu_check_dry_run.md" if args.dry_run else "gpu_check.md")
    sizes = Sizes(args.dry_run)
    params = load_params(args.project / "params.yaml")
    data = load_data(args.project, args.dry_run)
    torch.set_num_threads(os.cpu_count() or 1)
    report = Report()
    started = time.perf_counter()
    report.add(f"# GPU check{' (dry run, on the CPU)' if args.dry_run else ''}")
    report.add()
    report.add(f"`bash bench/gpu_check.sh{' --dry-run' if args.dry_run else ''}`, "
               f"{time.strftime('%Y-%m-%d')}.")
    report.add()
    versions(report, device)
    trained = training(report, data, params, device, sizes)
    resume(report, data, params, device, sizes)
    decoding(report, trained, data, device, sizes)
    export(report, trained, data)
    ddp(report, data, params, device, sizes)
    missing_cuda_error(report)
    report.add(f"Whole check: {time.perf_counter() - started:.0f} s.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(report.lines) + "\n", encoding="utf-8")
    print(f"gpu_check: wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
