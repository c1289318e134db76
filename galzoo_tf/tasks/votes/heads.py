"""Output heads of vote models: which logits belong to which question (Walmsley et al. 2019, §2.1).

A question's head reads the logits of rho, one per answer one-vs-rest (one logit for a
two-answer question: the first answer's). Several heads side by side make the
multi-question model; ``distribution`` gives the TFP Binomial of the votes k at N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf
import tensorflow_probability as tfp

from galzoo_tf.schema import Question, Schema

tfd = tfp.distributions


@dataclass(frozen=True)
class BinomialHead:
    """One question: which answers have an output logit, and where they sit in the model output."""

    question: str
    answers: tuple[str, ...]  # answers with their own logit (all but the last of a 2-answer question)
    all_answers: tuple[str, ...]
    offset: int  # first output column of this head

    @classmethod
    def for_question(cls, question: Question, offset: int = 0) -> BinomialHead:
        names = question.answer_names
        return cls(question.name, names[:1] if len(names) == 2 else names, names, offset)

    @property
    def size(self) -> int:
        return len(self.answers)

    def count_keys(self) -> list[str]:
        return [f"{self.question}/{a}/count" for a in self.answers]

    @property
    def total_key(self) -> str:
        return f"{self.question}/total"

    def logits(self, outputs: tf.Tensor) -> tf.Tensor:
        return outputs[..., self.offset:self.offset + self.size]

    def rho(self, outputs: tf.Tensor) -> tf.Tensor:
        """Typical answer probability of every answer (a 2-answer question's second is 1 - rho)."""
        rho = tf.sigmoid(self.logits(outputs))
        return tf.concat([rho, 1 - rho], axis=-1) if len(self.all_answers) == 2 else rho

    def distribution(self, outputs: tf.Tensor, total_votes: tf.Tensor) -> tfd.Binomial:
        """Binomial(N, rho) of the votes k for each answer with a logit; N broadcasts over answers."""
        total = tf.cast(total_votes, tf.float32)[..., None]
        return tfd.Binomial(total_count=total, logits=tf.cast(self.logits(outputs), tf.float32))


def heads_for(schema: Schema, questions: Sequence[str]) -> list[BinomialHead]:
    """Heads laid side by side in the output, in the order given."""
    heads, offset = [], 0
    for name in questions:
        head = BinomialHead.for_question(schema.question(name), offset)
        heads.append(head)
        offset += head.size
    return heads


def output_size(heads: Sequence[BinomialHead]) -> int:
    return sum(head.size for head in heads)
