"""Export a trained model for deployment without torch.

``graphs`` (the encoder and one decoder step as modules with flat tensor inputs and outputs,
the shape ONNX needs), ``onnx_export`` (``seq2seq export --format onnx``: trace both, check them
against PyTorch under ONNX Runtime, optionally quantize to int8, write the folder that
:mod:`seq2seq.runtime` translates from).
"""
