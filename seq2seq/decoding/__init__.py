"""Decoding with the PyTorch model: ``torch_backend`` (what the search of :mod:`seq2seq.search`
asks of a PyTorch model: tensors on its device) and ``translator`` (``Translator.load(...)``: text
in, text out; int8 quantization; an exported folder loads through it too)."""
