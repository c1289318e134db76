"""A trained vote model as later stages read it: its heads, N per question, experts and MC dropout sampler."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from galzoo_tf.errors import BadInputError
from galzoo_tf.science.expert import ExpertMapping
from galzoo_tf.tasks.votes.heads import VoteHead
from galzoo_tf.tasks.votes.posterior import DROPOUT_LAYER, Sampler
from galzoo_tf.training.model_dir import SavedModel


@dataclass(frozen=True)
class VoteModel(SavedModel):
    """A loaded vote model: its heads, N per question, and its MC dropout sampler."""

    @property
    def heads(self) -> list[VoteHead]:
        return [VoteHead.from_json(h) for h in self.sidecar["heads"]]

    def total_votes(self, head: VoteHead) -> int:
        """N at which predictions are made: the training galaxies' mean N, else the schema's typical N."""
        recorded = next(h for h in self.sidecar["heads"] if h["question"] == head.question)
        return max(1, round(recorded.get("mean_votes") or recorded["expected_votes"]))

    def votes_per_question(self) -> dict[str, int]:
        """N of every head's question (``total_votes``), as catalogues record it."""
        return {head.question: self.total_votes(head) for head in self.heads}

    def asked_fraction(self, head: VoteHead) -> float:
        """Fraction of training galaxies asked the head's question (1 for models trained before it was kept)."""
        recorded = next(h for h in self.sidecar["heads"] if h["question"] == head.question)
        return float(recorded.get("asked_fraction", 1.0))

    @property
    def experts(self) -> list[ExpertMapping]:
        """Expert-label mappings fitted by `galzoo calibrate --expert-labels` (predict adds their columns)."""
        return [ExpertMapping.from_json(raw) for raw in self.sidecar.get("expert", {}).values()]

    def sampling_rate(self, rate: float | None = None) -> float:
        """The test-time dropout rate sampling uses: ``rate``, else the calibrated one, else the training rate
        (a rate of 0 is a rate, not "unset")."""
        for chosen in (rate, self.dropout_rate):
            if chosen is not None:
                return float(chosen)
        return float(self.model.get_layer(DROPOUT_LAYER).rate)

    def sampling_spread(self, rate: float | None = None) -> float:
        """The logit-spread scaling calibration fitted, when sampling at the rate it was fitted at; else 1."""
        stored = self.sidecar.get("posterior", {})
        if rate is not None and rate != stored.get("dropout_rate"):
            return 1.0
        return float(stored.get("logit_spread", 1.0))

    def sampler(self, passes: int, tta: bool, seed: int, rate: float | None = None) -> Sampler:
        return Sampler(self.model, self.augmentation, passes, tta, seed, self.sampling_rate(rate),
                       self.sampling_spread(rate))


def check_same_heads(models: Sequence[VoteModel]) -> None:
    """Ensembles combine samples answer by answer: every member must predict the same outputs."""
    first = models[0].heads
    for member in models[1:]:
        if member.heads != first:
            raise BadInputError("ensemble mismatch", f"{member.path} predicts "
                                f"{[h.question for h in member.heads]}, {models[0].path} predicts "
                                f"{[h.question for h in first]}: an ensemble needs models of the same question")
