"""Inference feeds itself: ``search`` (greedy, sampling and batched beam search over token ids),
``translator`` (text in, text out: the Python API, int8 quantization, MLflow model URIs),
``bundle`` (the saved model folder) and ``bundle_files`` (its file names and config.json)."""
