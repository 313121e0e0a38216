"""Translate with an exported model, without torch: ONNX Runtime runs the graphs, NumPy searches.

``folder`` (the exported folder's files and ``export.json``), ``onnx_model`` (the encoder and
decoder-step graphs under ONNX Runtime), ``search`` (greedy, sampling and batched beam search
by the rules of :mod:`seq2seq.core.search_rules`), ``translator`` (text in, text out). Nothing
here imports torch: ``pip install --no-deps seq2seq`` plus numpy, sentencepiece, pyyaml and
onnxruntime is enough to translate.
"""
