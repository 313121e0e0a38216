"""seq2seq: a reproducible recurrent encoder-decoder translation pipeline.

embed -> encode -> (h, c) -> decode -> softmax -> token. Encoder packs, decoder unpacks.
Training feeds truth (teacher forcing); inference feeds itself (greedy or beam search).

The subpackages, in layers: each imports only those listed before it.

* ``core``: errors, atomic writes, devices, special token ids, where MLflow's store is;
* ``search``: greedy, sampling and beam search, written once over a backend (torch-free);
* ``params``: params.yaml as validated configs;
* ``data``: download, clean, official test sets, SentencePiece, subword regularization, batching;
* ``reporting``: sacreBLEU scores and figures;
* ``model``: encoder, attention, decoder, the seq2seq model (the reference math);
* ``fast``: the model's faster variants (same parameters), one of which is chosen when a model is built;
* ``runtime``: translating without torch: the text API, an exported model under ONNX Runtime;
* ``bundle``: the saved model, and finding one (a folder or an MLflow URI);
* ``decoding``: the search's PyTorch backend, the translator (Python API);
* ``training``: the training step and loop, schedules, checkpoints, torchrun;
* ``export``: the model as ONNX graphs (``seq2seq export``);
* ``tracking``: MLflow runs and the MLflow models;

and ``cli`` (``seq2seq translate``, ``seq2seq export``). The pipeline's stages (``stages/``) are thin scripts over them.
"""

__version__ = "0.1.0"
