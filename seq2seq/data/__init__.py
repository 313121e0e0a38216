"""From raw files to batches: ``download`` (the corpus, pinned by sha256), ``clean`` (normalise,
filter, split), ``testsets`` (official test sets, never filtered), ``subwords`` (SentencePiece and
the encoded splits), ``resampling`` (a new segmentation per epoch: subword regularization),
``batching`` (token-based, length-bucketed batches)."""
