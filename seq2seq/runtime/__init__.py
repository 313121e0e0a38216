"""Translating without torch: ``text`` (text in, text out: the API both translators share),
``folder`` (the exported folder's files and ``export.json``), ``onnx_model`` (the encoder and
decoder-step graphs under ONNX Runtime), ``numpy_backend`` (what the search of
:mod:`seq2seq.search` asks of them, in NumPy) ``translator`` (the exported model's
translator) and ``alignment`` (word alignments from attention). Nothing here imports torch: ``pip install --no-deps seq2seq`` plus numpy,
sentencepiece, pyyaml and onnxruntime is enough to translate.
"""
