"""Vote posteriors in the Kaggle challenge's layout: ``GalaxyID`` and the 37 tree-weighted probabilities.

Each MC sample's rho of every question (normalised to sum to 1, as one-vs-rest heads need not)
is multiplied along the tree as the release weighted its fractions (``galzoo_tf.kaggle``); the
catalogue holds the mean over samples, the posterior mean of each weighted probability, which
is what minimises the challenge's RMSE. Calibrate scores the same predictions against records
that hold the release's fractions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galzoo_tf.catalogues.writer import catalogue_provenance
from galzoo_tf.data.inputs import Batch, FolderSource, RecordSource
from galzoo_tf.errors import BadInputError
from galzoo_tf.fractions import conditional_fractions
from galzoo_tf.kaggle import ID_COLUMN, KAGGLE_TREE, as_columns, kaggle_answers, kaggle_columns, weighted_fractions
from galzoo_tf.schema import Schema, load_schema
from galzoo_tf.tasks.votes.catalogue import EnsembleSampler, PredictOptions, described_models
from galzoo_tf.tasks.votes.heads import VoteHead
from galzoo_tf.tasks.votes.model import VoteModel


@dataclass(frozen=True)
class KaggleOptions(PredictOptions):
    """A vote catalogue's options, naming the Kaggle format (in the resume settings and the provenance)."""

    format: str = "kaggle"


def missing_questions(heads: Sequence[VoteHead], schema: Schema) -> list[str]:
    """The tree's questions the heads do not predict with the tree's answers (the 37 columns need them all)."""
    predicted = {head.question: head.all_answers for head in heads}
    return [q.name for q in schema.questions if predicted.get(q.name) != q.answer_names]


def check_kaggle_model(model: VoteModel) -> Schema:
    """The release's tree, if the model predicts every one of its questions; else a clear error."""
    schema = load_schema(KAGGLE_TREE)
    missing = missing_questions(model.heads, schema)
    if missing:
        raise BadInputError("bad option", f"--format kaggle needs a model of every GZ2 question (galzoo train "
                                          f"--question all); {model.path} lacks {', '.join(missing)}")
    return schema


def kaggle_predictions(schema: Schema, rho: Mapping[str, np.ndarray]) -> np.ndarray:
    """(galaxies, 37): the posterior mean of every weighted probability, from rho samples (galaxies, T, answers)."""
    conditional = conditional_fractions(rho)  # one-vs-rest heads' rho need not sum to 1
    return as_columns(schema, weighted_fractions(schema, conditional)).mean(axis=1)


@dataclass(frozen=True)
class KaggleCatalogue:
    """The catalogue kind of `galzoo predict --format kaggle`: the challenge's submission layout, for models
    ``check_kaggle_model`` accepted."""

    schema: Schema

    def catalogue_rows(self, models: Sequence[VoteModel], options: PredictOptions,
                       out: Path) -> Callable[[Batch], dict[str, np.ndarray]]:
        sampler = EnsembleSampler(list(models), options.passes, options.tta, options.seed, options.dropout_rate)
        names = kaggle_columns(self.schema)

        def rows(batch: Batch) -> dict[str, np.ndarray]:
            predicted = kaggle_predictions(self.schema, sampler.rho(batch.images, batch.indices)).astype(np.float32)
            return {ID_COLUMN: np.asarray(batch.ids), **{name: predicted[:, i] for i, name in enumerate(names)}}

        return rows

    def catalogue_provenance(self, models: Sequence[VoteModel], source: RecordSource | FolderSource,
                             options: PredictOptions) -> Callable[[int], dict]:
        columns = {ID_COLUMN: "galaxy id (record id, or image file name without suffix)"}
        for answer in kaggle_answers(self.schema):
            weighted = self.schema.question(answer.question).kaggle_weighted
            columns[answer.kaggle] = (f"P({answer.key})" + (f" x the summed weight of the answers leading to "
                                                             f"{answer.question!r}" if weighted else
                                                             " (unweighted, as the release)") + ", posterior mean")
        return lambda rows: catalogue_provenance(source, options, rows, described_models(models, options), columns,
                                                 task="votes")
