"""Training feeds truth: ``step`` (one batch's teacher-forced forward and loss), ``trainer`` (the
loop: epochs, validation, best weights, averaging), ``schedules`` (learning rate, teacher forcing),
``moving_average`` (EMA weights), ``checkpoint`` (exact resume), ``distributed`` (torchrun data parallelism)."""
