"""seq2seq: a reproducible recurrent encoder-decoder translation pipeline.

embed -> encode -> (h, c) -> decode -> softmax -> token. Encoder packs, decoder unpacks.
Training feeds truth (teacher forcing); inference feeds itself (greedy or beam search).

Modules, one job each: ``config`` (params.yaml, validated), ``download``, ``clean``,
``subwords`` (SentencePiece), ``batching``, ``model``, ``training``, ``search``,
``bundle`` (the saved model), ``translator`` (Python API), ``scoring`` (sacreBLEU),
``tracking``/``experiment``/``mlflow_model`` (MLflow), ``cli``.
"""

__version__ = "0.1.0"
