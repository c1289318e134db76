"""The vote task (Walmsley et al. 2019): Binomial heads on the vote CNN, from GZ-style vote counts.

``VoteTraining`` is one training run (heads, label statistics, augmentations, model, loss,
datasets, what galzoo.json records); ``VoteTask`` is the task's entry in the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from galzoo_tf.catalogues.writer import CatalogueKind
from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.errors import BadInputError
from galzoo_tf.models import (
    ARCHITECTURES,
    DENSE_ACTIVATIONS,
    LEGACY_DENSE,
    PAPER_DENSE,
    TrunkScaledAdam,
    build_vote_model,
    rebuild_vote_model,
)
from galzoo_tf.schema import Schema, schema_of
from galzoo_tf.tasks.base import Progress, Rows, Task, TaskDefaults
from galzoo_tf.tasks.requests import PREDICT_FORMATS, CalibrateRequest, CalibrationReport, PredictRequest
from galzoo_tf.tasks.votes import catalogue
from galzoo_tf.tasks.votes.calibrate import calibration_report
from galzoo_tf.tasks.votes.heads import LINKS, VoteHead, heads_for, output_size, softmax_groups
from galzoo_tf.tasks.votes.kaggle import KaggleCatalogue, KaggleOptions, check_kaggle_model
from galzoo_tf.tasks.votes.loss import BinomialVoteLoss, negative_log_likelihood
from galzoo_tf.tasks.votes.model import VoteModel, check_same_heads
from galzoo_tf.tasks.votes.posterior import DROPOUT_LAYER, LOGITS_LAYER
from galzoo_tf.tasks.votes.targets import vote_dataset, vote_table
from galzoo_tf.training.config import TrainConfig
from galzoo_tf.training.model_dir import SavedModel, fine_tuning_source

STATISTICS_CHUNK = 4096  # galaxies per chunk of the baseline loss (a fixed summation order)


def questions_of(config: TrainConfig, schema: Schema) -> list[str]:
    """The questions a run trains heads for, less ``leave_out``; an unknown name is a clear error listing the
    tree's."""
    if config.leave_out and config.question != "all":
        raise BadInputError("bad option", "--leave-out applies with --question all")
    try:
        left_out = {schema.question(name).name for name in config.leave_out}
        if config.question != "all":
            return [schema.question(config.question).name]
    except KeyError as error:
        raise BadInputError("unknown question", error.args[0]) from None
    kept = [name for name in schema.question_names if name not in left_out]
    if not kept:
        raise BadInputError("bad option", "--leave-out names every question of the tree; keep at least one")
    return kept


def augment_config(config: TrainConfig, schema: Schema) -> AugmentConfig:
    """The augmentations: the question's zoom and crop from the schema unless overridden (root for 'all')."""
    question = schema.question(schema.root if config.question == "all" else config.question)
    zoom = config.zoom or question.zoom
    central = question.central_crop if config.central_crop is None else config.central_crop
    return AugmentConfig(config.image_size, config.greyscale, tuple(zoom), central)


def vote_network(config: TrainConfig, channels: int, heads: Sequence[VoteHead]) -> keras.Model:
    """The untrained vote CNN of a config, one logit per head output."""
    return build_vote_model((config.image_size, config.image_size, channels), output_size(heads), config.dropout,
                            config.architecture, config.dense_activation or PAPER_DENSE)


TRUNK = "trunk"  # --freeze for votes: every layer before the MC dropout and the logits


def copy_trunk(model: keras.Model, source: keras.Model, where: Path) -> None:
    """Start ``model`` from ``source``'s trunk (every weighted layer but the logits, in order): new heads."""
    if source.input_shape[1:] != model.input_shape[1:]:
        raise BadInputError("model mismatch", f"--init-from {where}: its input is {source.input_shape[1:]}, this "
                                               f"run's {model.input_shape[1:]}; use its --image-size and "
                                               "--colour/--greyscale")
    mine, theirs = _trunk_layers(model), _trunk_layers(source)
    shapes = [[tuple(w.shape) for w in layer.weights] for layer in mine]
    if shapes != [[tuple(w.shape) for w in layer.weights] for layer in theirs]:
        raise BadInputError("model mismatch", f"--init-from {where}: another trunk architecture; use its "
                                              "--architecture")
    for layer, origin in zip(mine, theirs, strict=True):  # in order: Keras numbers unnamed layers per process
        layer.set_weights(origin.get_weights())


def _trunk_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights and layer.name != LOGITS_LAYER]


def freeze_votes(model: keras.Model, groups: Sequence[str]) -> None:
    """``--freeze trunk``: train the new heads only."""
    unknown = [group for group in groups if group != TRUNK]
    if unknown:
        raise BadInputError("bad option", f"--freeze: cannot freeze {', '.join(unknown)} of a vote model; "
                                          f"choose {TRUNK}")
    if groups:
        for layer in model.layers:
            layer.trainable = layer.name == LOGITS_LAYER


DEFAULT_TRUNK_LR_FACTOR = 0.1  # full fine-tuning: the pretrained trunk learns 10x slower than the new heads


def trunk_lr_factor(config: TrainConfig) -> float | None:
    """The trunk's learning-rate factor of a full fine-tuning run, None when the whole model trains alike;
    --trunk-lr-factor where no pretrained trunk trains is an error."""
    if not config.init_from or config.freeze:
        if config.trunk_lr_factor is not None:
            raise BadInputError("bad option", "--trunk-lr-factor applies to full fine-tuning: --init-from without "
                                              "--freeze")
        return None
    return DEFAULT_TRUNK_LR_FACTOR if config.trunk_lr_factor is None else config.trunk_lr_factor


def compile_votes(model: keras.Model, config: TrainConfig, heads: Sequence[VoteHead],
                  jit: bool | str | None = None) -> keras.Model:
    """Adam at the config's rate (the trunk's scaled when fine-tuning all of it) on the vote loss of ``heads``;
    XLA as ``jit`` says (default: the config's)."""
    factor = trunk_lr_factor(config)
    optimizer = keras.optimizers.Adam(config.learning_rate) if factor is None else \
        TrunkScaledAdam(factor, (LOGITS_LAYER,), learning_rate=config.learning_rate)
    model.compile(optimizer=optimizer, loss=BinomialVoteLoss(softmax_groups(heads)),
                  jit_compile=config.jit if jit is None else jit)
    return model


@dataclass(frozen=True)
class LabelStatistics:
    """What the labels alone say: galaxies per split, the training-set mean rho and its validation loss."""

    train_galaxies: int
    val_galaxies: int
    mean_rho: np.ndarray
    baseline_val_loss: float  # the loss of predicting the mean rho for every galaxy: the bar a model must beat
    mean_votes: np.ndarray  # mean N per output over training galaxies asked the question: the N predictions use
    asked_fraction: np.ndarray  # per output: fraction of training galaxies asked the question (acquisition weight)


def label_statistics(data: Path, heads: list[VoteHead], filter_head: VoteHead,
                     min_votes: int) -> LabelStatistics:
    """One read of the votes of each split (no images); a split with no usable galaxy is an error."""
    size = output_size(heads)
    train, val = (vote_table(data, split, heads, min_votes, filter_head).targets for split in ("train", "val"))
    for split, table in (("train", train), ("val", val)):
        if len(table) == 0:
            raise BadInputError("no galaxies", f"{data}: no {split} galaxy has at least {min_votes} votes "
                                               f"for {filter_head.question!r}; lower --min-votes")
    sums, asked = train.astype(np.float64).sum(axis=0), (train[:, size:] > 0).sum(axis=0)
    rho = np.clip(sums[:size] / np.maximum(sums[size:], 1), 1e-4, 1 - 1e-4)
    logits = np.concatenate([head.logits_of(rho[head.offset:head.offset + head.size]) for head in heads])
    logits, groups = logits.astype(np.float32), softmax_groups(heads)
    loss = sum(float(tf.reduce_sum(negative_log_likelihood(chunk, tf.broadcast_to(logits, (len(chunk), size)),
                                                           groups)))
               for chunk in (val[start:start + STATISTICS_CHUNK] for start in range(0, len(val), STATISTICS_CHUNK)))
    return LabelStatistics(len(train), len(val), rho, loss / len(val), sums[size:] / np.maximum(asked, 1),
                           asked / len(train))


def resolved_config(config: TrainConfig, schema: Schema, source: SavedModel | None) -> TrainConfig:
    """The config as run: the question's default N cut from the schema (the root's for every question), and the
    trunk's dense activation (the paper's linear, or the fine-tuned model's own: its weights were learnt so)."""
    if config.head_link not in LINKS:
        raise BadInputError("bad option", f"--head-link must be one of {', '.join(LINKS)}, not {config.head_link!r}")
    if config.architecture not in ARCHITECTURES:
        raise BadInputError("bad option", f"--architecture must be one of {', '.join(ARCHITECTURES)}, not "
                                          f"{config.architecture!r}")
    if config.dense_activation not in (None, *DENSE_ACTIVATIONS):
        raise BadInputError("bad option", f"--dense-activation must be one of {', '.join(DENSE_ACTIVATIONS)}, not "
                                          f"{config.dense_activation!r}")
    filter_question = schema.root if config.question == "all" else config.question
    min_votes = config.min_votes
    if min_votes is None:
        try:
            min_votes = schema.question(filter_question).min_votes
        except KeyError as error:
            raise BadInputError("unknown question", error.args[0]) from None
    activation = config.dense_activation or (source.sidecar["config"].get("dense_activation") or LEGACY_DENSE
                                             if source else PAPER_DENSE)
    return replace(config, min_votes=min_votes, dense_activation=activation)


class VoteTraining:
    """One run of the vote CNN on a record folder: heads, label statistics, augmentations, model, datasets."""

    baseline_label = "baseline: training-set mean rho"

    def __init__(self, data: Path, manifest: dict, config: TrainConfig) -> None:
        if config.freeze and not config.init_from:
            raise BadInputError("bad option", "--freeze applies with --init-from (fine-tuning a trained model)")
        trunk_lr_factor(config)  # an inapplicable --trunk-lr-factor fails before any work
        self.source = SavedModel(*fine_tuning_source(config.init_from, "votes")) if config.init_from else None
        self.schema = schema_of(manifest)
        config = resolved_config(config, self.schema, self.source)
        self.data, self.manifest, self.config = data, manifest, config
        self.heads = heads_for(self.schema, questions_of(config, self.schema), config.head_link)
        self.filter_head = self.heads[0] if config.question != "all" else \
            heads_for(self.schema, [self.schema.root])[0]  # the root filters even when left out
        self.labels = label_statistics(data, self.heads, self.filter_head, config.min_votes)
        self.train_galaxies, self.val_galaxies = self.labels.train_galaxies, self.labels.val_galaxies
        self.baseline_val_loss = self.labels.baseline_val_loss
        self.augmentation = augment_config(config, self.schema)
        self.loss = BinomialVoteLoss(softmax_groups(self.heads))
        self.title = f"trained {config.question} model"

    def build(self) -> keras.Model:
        channels = 1 if self.config.greyscale else self.manifest["image"]["shape"][-1]
        model = vote_network(self.config, channels, self.heads)
        if self.source:
            copy_trunk(model, self.source.model, self.source.path)
        freeze_votes(model, self.config.freeze)
        return compile_votes(model, self.config, self.heads)

    def dataset(self, split: str, epochs: tuple[int, int] | None = None) -> tf.data.Dataset:
        config = self.config
        return vote_dataset(self.data, split, self.heads, self.augmentation, config.batch_size, config.seed,
                            config.min_votes, epochs=epochs, filter_head=self.filter_head)

    def sidecar(self) -> dict:
        labels = self.labels
        return {
            "question": self.config.question,
            "schema": self.schema.name,
            "heads": [{**h.describe(), "expected_votes": self.schema.question(h.question).expected_votes,
                       "mean_votes": round(float(labels.mean_votes[h.offset]), 3),
                       "asked_fraction": round(float(labels.asked_fraction[h.offset]), 4)} for h in self.heads],
            "baseline": {"what": "training-set mean rho for every galaxy", "rho": labels.mean_rho.tolist(),
                         "val_loss": labels.baseline_val_loss},
            **({"init_from": {**self.source.describe(), "freeze": list(self.config.freeze),
                              "trunk_lr_factor": trunk_lr_factor(self.config)}} if self.source else {}),
        }


class VoteTask(Task):
    """Vote posteriors: Binomial distributions of each question's vote counts."""

    name = "votes"
    defaults = TaskDefaults(dropout=0.5, predict_passes=30, calibrate_passes=30)

    def purpose(self, settings: dict) -> str:
        return f"question {settings.get('question')!r}"

    def training(self, data: Path, manifest: dict, config: TrainConfig) -> VoteTraining:
        return VoteTraining(data, manifest, config)

    def rebuilt(self, trained: keras.Model, config: dict) -> keras.Model:
        return rebuild_vote_model(trained, config)

    def saved_model(self, path: Path, model: keras.Model, sidecar: dict) -> VoteModel:
        for name in (DROPOUT_LAYER, LOGITS_LAYER):  # another architecture fails here, not mid-catalogue
            model.get_layer(name)
        return VoteModel(path, model, sidecar)

    def predict_options(self, request: PredictRequest, models: Sequence[VoteModel]) -> catalogue.PredictOptions:
        check_same_heads(models)
        return catalogue.PredictOptions(passes=request.passes or self.defaults.predict_passes, tta=request.tta,
                                        seed=request.seed, save_samples=request.save_samples,
                                        interval=request.interval, dropout_rate=request.dropout_rate,
                                        batch_size=request.batch_size)

    formats = PREDICT_FORMATS  # its posterior, and the Kaggle challenge's layout

    def catalogue_format(self, name: str, models: Sequence[VoteModel],
                         options: catalogue.PredictOptions) -> tuple[catalogue.PredictOptions, CatalogueKind]:
        if name != "kaggle":
            return super().catalogue_format(name, models, options)
        return KaggleOptions(**asdict(options)), KaggleCatalogue(check_kaggle_model(models[0]))

    def catalogue_rows(self, models: Sequence[VoteModel], options: catalogue.PredictOptions, out: Path) -> Rows:
        return catalogue.vote_rows(list(models), options)

    def catalogue_provenance(self, models, source, options):
        return catalogue.vote_provenance(list(models), source, options)

    def calibrate(self, model: VoteModel, data: Path, out: Path, request: CalibrateRequest,
                  ensemble: Sequence[VoteModel], progress: Progress) -> CalibrationReport:
        if request.trained_rates:
            raise BadInputError("bad option", "--trained-rate compares parameter models; for a vote model use "
                                              "--tune-dropout (test-time rates) or --ensemble")
        return calibration_report(model, data, out, request, self.defaults.calibrate_passes, ensemble, progress)
