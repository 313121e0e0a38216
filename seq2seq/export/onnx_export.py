"""``seq2seq export --format onnx``: a trained model as a folder that translates without torch.

The encoder and one decoder step are traced to ONNX with dynamic batch and lengths
(:mod:`.graphs`), then run under ONNX Runtime on a probe batch and compared with the PyTorch
model: an export that does not compute what the model computes is refused, not written.
``quantize="int8"`` then applies ONNX Runtime's dynamic quantization (int8 weights,
activations quantized on the fly) to both graphs. The folder (see
:mod:`seq2seq.runtime.folder`) is written atomically.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..bundle.bundle import Bundle, load_bundle
from ..bundle.files import SRC_SPM as BUNDLE_SRC_SPM
from ..bundle.files import TGT_SPM as BUNDLE_TGT_SPM
from ..bundle.files import WEIGHTS_FILE
from ..bundle.locate import locate_model, model_kind
from ..core.atomic import atomic_dir, sha256_file
from ..core.errors import Seq2SeqError
from ..data.batching import source_tensor
from ..runtime.folder import (
    ENCODER_FILE,
    EXPORT_FILE,
    FILES,
    FORMAT,
    FORMAT_VERSION,
    SRC_SPM,
    STEP_FILE,
    TGT_SPM,
    is_export_folder,
)
from ..runtime.onnx_model import OnnxModel, import_onnxruntime, select_state
from .graphs import EncoderGraph, StepGraph, encoder_outputs, flat_memory, flat_state, memory_names, state_names

OPSET = 17
TOLERANCE = 1e-4  # largest difference allowed between ONNX Runtime's and PyTorch's fp32 outputs on the probe


def export_onnx(model: str | Path, out: str | Path, quantize: str = "none") -> dict[str, Any]:
    """Export the bundle (folder or MLflow URI) ``model`` to the folder ``out``; returns export.json."""
    if quantize not in ("none", "int8"):
        raise Seq2SeqError(f"--quantize: got {quantize!r}; use none or int8")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_export_folder(out))):
        raise Seq2SeqError(f"--out: {out} exists and is not an exported model; choose a new folder (or remove it)")
    import_onnxruntime()
    if importlib.util.find_spec("onnx") is None:  # the exporter's and the quantizer's model format
        raise Seq2SeqError("export needs onnx: pip install \"seq2seq[onnx]\" (or pip install onnx)")
    bundle_path = locate_model(model)
    trained = "give the trained model's folder (data/model) or its MLflow URI"
    if model_kind(bundle_path, model, give=trained) == "export":
        raise Seq2SeqError(f"--model: {model} is already an exported model; export from the trained model's "
                           "folder (data/model) or its MLflow URI")
    bundle = load_bundle(bundle_path, None)  # the variant for graphs (no CPU-only paths)
    with atomic_dir(out) as tmp:
        write_graphs(bundle, tmp)
        check_against_pytorch(bundle, tmp)
        if quantize == "int8":
            quantize_graphs(tmp)
        shutil.copyfile(bundle_path / BUNDLE_SRC_SPM, tmp / SRC_SPM)
        shutil.copyfile(bundle_path / BUNDLE_TGT_SPM, tmp / TGT_SPM)
        info = export_info(bundle, bundle_path, tmp, "int8" if quantize == "int8" else "fp32")
        (tmp / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def probe_batch(vocab_size: int, lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random source ids (no special tokens) with these lengths, as the encoder takes them."""
    generator = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(4, max(vocab_size, 5), (n,), generator=generator).tolist() for n in lengths]
    return source_tensor(seqs)


def write_graphs(bundle: Bundle, folder: Path) -> None:
    """Trace the encoder and the decoder step to ONNX, every batch, row and length axis dynamic."""
    model = bundle.model
    states, memories = state_names(model), memory_names(model)
    src, lengths = probe_batch(model.src_vocab_size, [4, 6])
    beam = 3  # trace the step with several rows per memory entry, as beam search runs it
    with torch.no_grad():
        memory, state = model.encode(src, lengths, packed=True)
        rows = torch.arange(src.size(0)).repeat_interleave(beam)
        step_state = flat_state(state.select(rows))
    tokens = torch.full((rows.numel(), 1), 5, dtype=torch.long)

    def state_axes(rows: str) -> dict[str, dict[int, str]]:  # h and c hold rows on axis 1, feed on axis 0
        return {name: ({0: rows} if name == "feed" else {1: rows}) for name in states}

    encoder_inputs = ["src", "src_lengths"]
    encoder_axes = {"src": {0: "batch", 1: "source"}, "src_lengths": {0: "batch"}, **state_axes("batch"),
                    **{name: {0: "batch", 1: "source"} for name in memories + ["states"]}}
    step_inputs = ["tokens"] + states + memories
    step_outputs = ["log_probs"] + [f"next_{name}" for name in states] + (["attention"] if memories else [])
    step_axes = {"tokens": {0: "rows"}, **state_axes("rows"), **{n: {0: "entries", 1: "source"} for n in memories},
                 "log_probs": {0: "rows"}, **{f"next_{n}": axes for n, axes in state_axes("rows").items()},
                 "attention": {0: "rows", 1: "source"}}
    step_axes = {name: axes for name, axes in step_axes.items() if name in step_inputs + step_outputs}
    # The wrappers go in eval mode: the exporter puts a module back in the mode it found it in,
    # and a wrapper left in training mode would switch the model's dropout on.
    with warnings.catch_warnings(), quiet_stderr():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(EncoderGraph(model).eval(), (src, lengths), str(folder / ENCODER_FILE),
                          input_names=encoder_inputs, output_names=encoder_outputs(model), dynamic_axes=encoder_axes,
                          opset_version=OPSET, dynamo=False)
        torch.onnx.export(StepGraph(model).eval(), (tokens, *step_state, *flat_memory(memory, memories)),
                          str(folder / STEP_FILE), input_names=step_inputs, output_names=step_outputs,
                          dynamic_axes=step_axes, opset_version=OPSET, dynamo=False)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Keep the exporter's C++ shape-inference notes (about pack_padded_sequence, whose shapes it
    cannot infer but the graphs carry at run time) off the terminal."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_against_pytorch(bundle: Bundle, folder: Path) -> None:
    """Run both graphs under ONNX Runtime on a probe batch of other sizes (unsorted lengths,
    beams sharing memory) and compare with the PyTorch model; refuse an export that differs."""
    model = bundle.model
    info = {"state": state_names(model), "memory": memory_names(model), "attention": bool(memory_names(model))}
    runtime = OnnxModel(folder, info, threads=1)
    src, lengths = probe_batch(model.src_vocab_size, [3, 9, 5], seed=1)
    memory_np, state_np = runtime.encode(src.numpy(), lengths.numpy())
    beam, entries = 2, src.size(0)
    rows = torch.arange(entries).repeat_interleave(beam)
    tokens = torch.arange(rows.numel()) % max(model.tgt_vocab_size - 4, 1) + 4
    with torch.no_grad():
        memory, state = model.encode(src, lengths)
        features, next_state, weights = model.decoder(tokens.unsqueeze(1), state.select(rows), memory)
        expected = torch.log_softmax(model.generator(features[:, -1]).float(), dim=-1)
    log_probs, next_np, weights_np = runtime.step(tokens.numpy(), select_state(state_np, rows.numpy()), memory_np)
    pairs = [("log-probabilities", log_probs, expected)]
    pairs += [(f"state {n}", next_np[n], t) for n, t in zip(info["state"], flat_state(next_state))]
    if weights is not None:
        pairs.append(("attention", weights_np, weights[:, -1]))
    for what, got, want in pairs:
        worst = float(np.abs(got - want.numpy()).max())
        if not worst <= TOLERANCE:
            raise Seq2SeqError(f"export: the ONNX decoder's {what} differ from the PyTorch model's by {worst:.2g} "
                               f"(> {TOLERANCE}) for this {model.config.cell} / {model.config.attention} model; it "
                               "cannot be exported faithfully with this torch and onnxruntime")


def quantize_graphs(folder: Path) -> None:
    """ONNX Runtime's dynamic int8 quantization of both graphs, in place."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about static-quantization pre-processing
    try:
        for name in (ENCODER_FILE, STEP_FILE):
            fp32 = folder / (name + ".fp32")
            (folder / name).rename(fp32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(fp32), str(folder / name), weight_type=QuantType.QInt8)
            fp32.unlink()
    finally:
        root.setLevel(level)


def export_info(bundle: Bundle, bundle_path: Path, folder: Path, precision: str) -> dict[str, Any]:
    model, info = bundle.model, bundle.info
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "precision": precision,
        "model": info["model"],
        "src_vocab_size": model.src_vocab_size,
        "tgt_vocab_size": model.tgt_vocab_size,
        "src_lang": info.get("src_lang", ""),
        "tgt_lang": info.get("tgt_lang", ""),
        "state": state_names(model),
        "memory": memory_names(model),
        "attention": bool(memory_names(model)),
        "opset": OPSET,
        "sha256": {name: sha256_file(folder / name) for name in FILES},
        "exported_from": {
            "weights_sha256": sha256_file(bundle_path / WEIGHTS_FILE),
            "mlflow_run_id": info.get("mlflow", {}).get("run_id"),
            "torch": torch.__version__.split("+")[0],
        },
    }
