"""Decoding with the PyTorch model: ``load`` (the translator a model needs: PyTorch's for a trained
bundle, the torch-free one for an exported folder), ``torch_backend`` (what the search of
:mod:`seq2seq.search` asks of a PyTorch model: tensors on its device) and ``translator``
(``Translator.load(...)``: text in, text out; int8 quantization)."""
