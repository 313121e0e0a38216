"""The model, as the seed tells it: embed -> encode -> (h, c) -> decode -> softmax -> token.

``encoder`` (the encoder packs; the bridge hands its final state to the decoder), ``attention``
(the memory of encoder states, Luong and Bahdanau scores), ``decoder`` (the decoder unpacks: one
step, or all teacher-forced steps), ``recurrence`` (the decoder's LSTM/GRU cell one step at a time),
``seq2seq`` (the whole model). This is the reference math: no speed tricks (those live in
:mod:`seq2seq.fast`)."""
