"""The hypotheses of a beam search that have ended, kept where the search runs (on its device)."""
from __future__ import annotations

from ..core.token_ids import EOS_ID
from .backend import Array, Backend
from .rules import Hypothesis, best_first, length_penalty


class Finished:
    """For every sentence of a batch, its ``nbest`` best ended hypotheses by score (ties: the one
    that ended first) and how many have ended in all."""

    def __init__(self, xp: Backend, batch: int, nbest: int, longest: int, source_length: int,
                 attention: bool) -> None:
        self.xp = xp
        self.score = xp.full((batch, nbest), float("-inf"), "float64")
        self.log_prob = xp.full((batch, nbest), 0.0, "float32")
        self.tokens = xp.full((batch, nbest, longest), EOS_ID, "int64")
        self.length = xp.full((batch, nbest), 0, "int64")  # tokens, </s> not counted
        self.ended = xp.full((batch, nbest), False, "bool")  # with </s> (else cut off by the limit)
        self.valid = xp.full((batch, nbest), False, "bool")
        # one row per step (the </s> step included)
        self.attention = xp.full((batch, nbest, longest, source_length), 0.0, "float32") if attention else None
        self.count = xp.full((batch,), 0, "int64")  # every hypothesis that ended

    def add_step(self, sentences: Array, steps: int, alpha: float, log_prob: Array, prefix: Array, token: Array,
                 valid: Array, attention: Array | None) -> None:
        """The K candidates [n, K] of step ``steps`` of the sentences ``sentences`` [n], each twice:
        first as ended by </s> (its tokens: ``prefix`` [n, K, steps - 1]), then as cut off by the
        length limit (``prefix`` and ``token`` [n, K]). ``valid`` [n, 2K] marks the real ones;
        attention [n, K, steps, S] is each candidate's."""
        xp = self.xp
        n, beam = log_prob.shape
        tokens = xp.concat([prefix, token[:, :, None]], axis=2)  # an ended one's last token is its </s>
        padded = xp.full((n, 2 * beam, self.tokens.shape[2]), EOS_ID, "int64")
        padded[:, :, :steps] = xp.concat([tokens, tokens], axis=1)
        score = xp.as_float64(log_prob) / length_penalty(steps, alpha)
        self.add(sentences, xp.concat([score, score], axis=1), xp.concat([log_prob, log_prob], axis=1), padded,
                 xp.concat([xp.full((n, beam), steps - 1, "int64"), xp.full((n, beam), steps, "int64")], axis=1),
                 xp.concat([xp.full((n, beam), True, "bool"), xp.full((n, beam), False, "bool")], axis=1),
                 valid, None if attention is None else xp.concat([attention, attention], axis=1))

    def add(self, sentences: Array, score: Array, log_prob: Array, tokens: Array, length: Array, ended: Array,
            valid: Array, attention: Array | None) -> None:
        """Candidates [n, C] of the sentences ``sentences`` [n] (``valid`` marks the real ones, in the
        order they end); tokens [n, C, longest], attention [n, C, steps, S]."""
        xp = self.xp
        nbest = self.score.shape[1]
        self.count[sentences] += valid.sum(1)
        pooled_valid = xp.concat([self.valid[sentences], valid], axis=1)  # [n, nbest + C]
        key = xp.masked_fill(xp.concat([self.score[sentences], score], axis=1), ~pooled_valid, float("-inf"))
        best = xp.order_desc(key)[:, :nbest]  # the earlier of equals first

        def keep(old: Array, new: Array) -> Array:
            return xp.pick(xp.concat([old[sentences], new], axis=1), best)

        self.tokens[sentences] = keep(self.tokens, tokens)
        self.score[sentences] = keep(self.score, score)
        self.log_prob[sentences] = keep(self.log_prob, log_prob)
        self.length[sentences] = keep(self.length, length)
        self.ended[sentences] = keep(self.ended, ended)
        self.valid[sentences] = keep(self.valid, valid)
        if self.attention is not None and attention is not None:
            rows = xp.full((*attention.shape[:2], self.attention.shape[2], attention.shape[3]), 0.0, "float32")
            rows[:, :, :attention.shape[2]] = attention
            self.attention[sentences] = keep(self.attention, rows)

    def hypotheses(self, source_lengths: list[int], nbest: int) -> list[list[Hypothesis]]:
        """Per sentence, its ``nbest`` best, best first (:func:`~.rules.best_first`)."""
        xp = self.xp
        columns = [t.tolist() for t in (self.score, self.log_prob, self.tokens, self.length, self.ended, self.valid)]
        attention = None if self.attention is None else xp.host(self.attention)
        results = []
        for b, (scores, log_probs, tokens, lengths, ended, valid) in enumerate(zip(*columns)):
            kept = []
            for slot in range(len(scores)):
                if valid[slot]:
                    steps = lengths[slot] + (1 if ended[slot] else 0)
                    attn = None if attention is None else attention[b, slot, :steps, :source_lengths[b]]
                    kept.append(Hypothesis(tokens[slot][:lengths[slot]], scores[slot], log_probs[slot], attn,
                                           ended[slot]))
            results.append(best_first(kept, nbest))
        return results
