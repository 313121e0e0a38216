"""Inference feeds itself: greedy search, sampling and beam search, written once and torch-free.

``algorithms`` (the searches, over a backend), ``ensemble`` (several models' backends searched as
one), ``forced`` (scoring given translations through the same loop), ``backend`` (what a search asks of whatever runs the
model: one decoder step, reordering rows of state and memory, top-k, log-probabilities), ``finished``
(a beam search's ended hypotheses), ``rules`` (the length limit, the length penalty, when a beam is
done, how hypotheses rank) and ``settings`` (how to search, declared once). Two backends fill it in:
:mod:`seq2seq.decoding.torch_backend` (PyTorch) and :mod:`seq2seq.runtime.numpy_backend` (ONNX
Runtime and NumPy)."""
