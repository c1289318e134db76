"""Output heads of vote models: which logits belong to which question, and how they become rho.

A question's answers share one softmax (``link="softmax"``, the default): their rho sum to 1
and the votes k follow Multinomial(N, rho), as Walmsley et al. (2019) model smooth with a
2-way softmax and Zoobot every question with a Dirichlet-multinomial. A two-answer question
needs one logit (the first answer's; the 2-way softmax is the sigmoid), its votes
Binomial(N, rho). Models trained before softmax heads existed gave each answer of a longer
question its own sigmoid (``link="one-vs-rest"``), so those rho need not sum to 1; they load
and sample as trained. Each answer's marginal is Binomial(N, rho) under either link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from galzoo_tf.schema import Question, Schema

LINKS = ("softmax", "one-vs-rest")


@dataclass(frozen=True)
class VoteHead:
    """One question: which answers have an output logit, where they sit in the model output, and the link."""

    question: str
    answers: tuple[str, ...]  # answers with their own logit (all but the last of a 2-answer question)
    all_answers: tuple[str, ...]
    offset: int  # first output column of this head
    link: str = "softmax"

    @classmethod
    def for_question(cls, question: Question, offset: int = 0, link: str = "softmax") -> VoteHead:
        names = question.answer_names
        return cls(question.name, names[:1] if len(names) == 2 else names, names, offset, link)

    @property
    def size(self) -> int:
        return len(self.answers)

    @property
    def is_softmax(self) -> bool:
        """One softmax over several logits (a 2-answer question's single sigmoid is not counted)."""
        return self.link == "softmax" and self.size > 1

    def count_keys(self) -> list[str]:
        return [f"{self.question}/{a}/count" for a in self.answers]

    @property
    def total_key(self) -> str:
        return f"{self.question}/total"

    def logits(self, outputs: tf.Tensor) -> tf.Tensor:
        return outputs[..., self.offset:self.offset + self.size]

    def rho(self, outputs: tf.Tensor) -> tf.Tensor:
        """Typical answer probability of every answer (a 2-answer question's second is 1 - rho)."""
        logits = tf.cast(self.logits(outputs), tf.float32)
        if self.is_softmax:
            return tf.nn.softmax(logits, axis=-1)
        rho = tf.sigmoid(logits)
        return tf.concat([rho, 1 - rho], axis=-1) if len(self.all_answers) == 2 else rho

    def logits_of(self, rho: np.ndarray) -> np.ndarray:
        """Logits that give ``rho`` (..., outputs of this head): the inverse of ``rho``."""
        rho = np.clip(np.asarray(rho, np.float64), 1e-7, 1 - 1e-7)
        return np.log(rho) if self.is_softmax else np.log(rho / (1 - rho))

    def describe(self) -> dict:
        return {"question": self.question, "answers": list(self.answers), "all_answers": list(self.all_answers),
                "offset": self.offset, "link": self.link}

    @classmethod
    def from_json(cls, raw: dict) -> VoteHead:
        """A head as a sidecar records it; heads recorded before links existed were one-vs-rest."""
        return cls(raw["question"], tuple(raw["answers"]), tuple(raw["all_answers"]), raw["offset"],
                   raw.get("link", "one-vs-rest"))


def heads_for(schema: Schema, questions: Sequence[str], link: str = "softmax") -> list[VoteHead]:
    """Heads laid side by side in the output, in the order given."""
    if link not in LINKS:
        raise ValueError(f"unknown head link {link!r}; choose from {', '.join(LINKS)}")
    heads, offset = [], 0
    for name in questions:
        head = VoteHead.for_question(schema.question(name), offset, link)
        heads.append(head)
        offset += head.size
    return heads


def output_size(heads: Sequence[VoteHead]) -> int:
    return sum(head.size for head in heads)


def softmax_groups(heads: Sequence[VoteHead]) -> tuple[tuple[int, int], ...]:
    """(offset, size) of every head whose logits share a softmax: the loss's multinomial groups."""
    return tuple((head.offset, head.size) for head in heads if head.is_softmax)
