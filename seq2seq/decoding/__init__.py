"""Inference feeds itself: ``search`` (greedy, sampling and batched beam search over token ids),
``text`` (text in, text out: the API every translator shares, without torch), ``translator``
(the PyTorch model's translator: int8 quantization; an exported folder loads through it too),
``locate`` (a model folder, or one fetched from an MLflow URI), ``bundle`` (the saved model
folder) and ``bundle_files`` (its file names and config.json)."""
