"""export: data/model as ONNX graphs in data/export/, a folder that translates without torch.

The encoder and one decoder step (``seq2seq export --format onnx``, checked against the PyTorch
model before anything is written), the tokenizers and export.json; with export.quantize: int8,
ONNX Runtime's dynamic int8 quantization. The folder is also logged to the training run as the
MLflow model ``onnx`` (``onnx-int8``), which loads and predicts without torch.
"""
from pathlib import Path

from seq2seq.bundle.files import load_bundle_info
from seq2seq.core.guard import run_guarded
from seq2seq.data.clean import read_split
from seq2seq.export.onnx_export import export_onnx
from seq2seq.params.config import load_params
from seq2seq.tracking.exported import ExportLog

OUT = Path("data/export")


def main() -> None:
    params = load_params()
    info = export_onnx("data/model", OUT, quantize=params.export.quantize)
    size = sum(f.stat().st_size for f in OUT.iterdir()) / 1e6
    example = list(read_split("data/clean/valid.tsv")["source"][:2])
    model_id = ExportLog(load_bundle_info("data/model").get("mlflow", {}).get("run_id")).record(OUT, info, example)
    print(f"export: {OUT} ({info['precision']} ONNX, {size:.1f} MB)"
          + (f"; MLflow model {model_id}" if model_id else ""))


if __name__ == "__main__":
    run_guarded(main, "export")
