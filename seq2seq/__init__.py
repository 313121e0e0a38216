"""seq2seq: a reproducible recurrent encoder-decoder translation pipeline.

embed -> encode -> (h, c) -> decode -> softmax -> token. Encoder packs, decoder unpacks.
Training feeds truth (teacher forcing); inference feeds itself (greedy or beam search).

The subpackages, in the order a run uses them:

* ``core``: params.yaml as validated configs, errors, atomic writes, devices;
* ``data``: download, clean, official test sets, SentencePiece, subword regularization, batching;
* ``model``: encoder, attention, decoder, the seq2seq model (the reference math);
* ``fast``: CPU fast paths that training and decoding plug into the model;
* ``training``: the training step and loop, schedules, checkpoints, torchrun;
* ``decoding``: greedy / beam search, the translator (Python API), the model bundle;
* ``export``: the model as ONNX graphs (``seq2seq export``);
* ``runtime``: an exported model translated without torch (ONNX Runtime and NumPy);
* ``reporting``: sacreBLEU scores and figures;
* ``tracking``: MLflow runs and the MLflow models;

and ``cli`` (``seq2seq translate``, ``seq2seq export``). The pipeline's stages (``stages/``) are thin scripts over them.
"""

__version__ = "0.1.0"
