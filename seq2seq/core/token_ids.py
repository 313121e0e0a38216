"""The ids of the special tokens every SentencePiece model here is trained with (see
:mod:`.subwords`), kept apart from SentencePiece so that the model can use them without it."""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
