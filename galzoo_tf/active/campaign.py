"""Simulated active-learning campaigns (Walmsley et al. 2019, §3.5): how many labels BALD saves over random.

The records' test split is the fixed test set; the pool is the train split (galaxies with
at least ``min_votes`` votes for the question, whose stored votes stand in for volunteers).
The validation split picks the best epoch of each iteration's training (the weights kept).
Each repeat draws an initial random labelled set (shared by every strategy of the repeat,
so strategies are compared on paired runs), then per iteration: train on the labelled set,
measure loss and RMSE on the test set, score the rest of the pool with the strategy, and
reveal the votes of the ``step`` best. ``warm_start`` continues from the previous
iteration's weights (fewer epochs suffice); otherwise each iteration trains from a fresh
initialisation. State is saved after every iteration, so a killed campaign resumes at the
last finished one.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from galzoo_tf import __version__
from galzoo_tf.active.report import ACQUIRED_FIGURE, RMSE_FIGURE, write_report
from galzoo_tf.active.scores import STRATEGIES, Scorer
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.data.records import read_manifest
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import changed_keys, read_json, replaced_atomically, write_json_atomic
from galzoo_tf.outputs import Output, remove_written, writing
from galzoo_tf.schema import schema_of
from galzoo_tf.tasks.votes.heads import heads_for
from galzoo_tf.tasks.votes.posterior import Sampler
from galzoo_tf.tasks.votes.targets import VoteTable, vote_dataset, vote_table
from galzoo_tf.tasks.votes.task import augment_config, compile_votes, vote_network
from galzoo_tf.training.config import TrainConfig

STATE, RESULTS, ACQUIRED, SUMMARY = "state.json", "results.csv", "acquired.csv", "summary.json"


@dataclass(frozen=True)
class CampaignOptions:
    """Every choice that shapes a campaign; a resumed campaign must use the same."""

    question: str = "bar"
    initial: int = 512
    step: int = 256
    iterations: int = 20
    repeats: int = 4
    strategies: tuple[str, ...] = ("bald", "random")
    epochs: int = 10  # per iteration
    image_size: int = 128
    batch_size: int = 64
    passes: int = 30
    tta: bool = False  # pool scoring: MC dropout only (trunk once per galaxy) unless asked
    warm_start: bool = True
    min_votes: int = 1
    dropout: float = 0.5
    learning_rate: float = 1e-3
    seed: int = 0

    def training(self) -> TrainConfig:
        """The training settings of every iteration, as a `galzoo train` run would have them."""
        return TrainConfig(question=self.question, batch_size=self.batch_size, image_size=self.image_size,
                           dropout=self.dropout, learning_rate=self.learning_rate, min_votes=self.min_votes)

    def check(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise BadInputError("bad option", f"--strategies must be among {', '.join(STRATEGIES)}, "
                                              f"not {','.join(self.strategies)}")
        for name in ("initial", "step", "iterations", "repeats", "epochs", "passes", "batch_size"):
            if getattr(self, name) < 1:
                raise BadInputError("bad option", f"--{name.replace('_', '-')} must be at least 1")


def lineage_seed(seed: int, repeat: int, stage: int) -> int:
    """A distinct, reproducible seed per (campaign seed, repeat, stage): stage 0 draws the initial set,
    stage i + 1 is iteration i."""
    return int(np.random.SeedSequence([seed, repeat, stage]).generate_state(1)[0] % (2**31 - 1))


class Campaign:
    """One simulated campaign in a folder: options, data, state, and the loop over repeats and strategies."""

    def __init__(self, data: Path, out: Path, options: CampaignOptions, resume: bool = False,
                 overwrite: bool = False) -> None:
        options.check()
        self.data, self.out, self.options = Path(data), Path(out), options
        schema = schema_of(read_manifest(self.data))
        self.head = heads_for(schema, [options.question])[0]
        self.training = options.training()
        self.augmentation = augment_config(self.training, schema)
        self.pool, self.test, self.val = (self._votes(split) for split in ("train", "test", "val"))  # val: best epoch
        needed = options.initial + options.step * (options.iterations - 1)
        if needed > len(self.pool.ids):
            raise BadInputError("pool too small", f"--initial {options.initial} + {options.iterations - 1} x "
                                                  f"--step {options.step} = {needed} galaxies, but the train "
                                                  f"split has {len(self.pool.ids)} with votes for "
                                                  f"{options.question!r}")
        self.settings = {**asdict(options), "strategies": list(options.strategies),
                         "data": str(self.data.resolve()), "fingerprint": read_manifest(self.data)["fingerprint"]}
        self.state = self._start(resume, overwrite)

    def _votes(self, split: str) -> VoteTable:
        """A split's galaxies with at least ``min_votes`` votes for the question (none is an error)."""
        table = vote_table(self.data, split, [self.head], self.options.min_votes)
        if len(table.ids) == 0:
            raise BadInputError("no galaxies", f"{self.data}: no {split} galaxy has {max(self.options.min_votes, 1)} "
                                               f"votes for {self.head.question!r}")
        return table

    def _start(self, resume: bool, overwrite: bool) -> dict:
        state_path = self.out / STATE
        if state_path.is_file() and not resume:
            if not overwrite:
                raise BadInputError("output exists", f"{self.out} holds a campaign; pass --resume to continue "
                                                     "it or --overwrite to start again")
            remove_written(self.out, [STATE, RESULTS, ACQUIRED, SUMMARY, RMSE_FIGURE, ACQUIRED_FIGURE])
            shutil.rmtree(self.out / "weights", ignore_errors=True)
        if resume and state_path.is_file():
            state = read_json(state_path)
            changed = changed_keys(state["settings"], self.settings)
            if changed:
                raise BadInputError("resume mismatch", f"{self.out}: the campaign used other "
                                                       f"{', '.join(changed)}; use the same options")
            return state
        (self.out / "weights").mkdir(parents=True, exist_ok=True)
        state = {"galzoo_version": __version__, "settings": self.settings, "lineages": {}, "results": [],
                 "acquired": []}
        write_json_atomic(state_path, state)
        return state

    def lineages(self) -> list[tuple[int, str]]:
        return [(r, s) for r in range(self.options.repeats) for s in self.options.strategies]

    def run(self, progress: Callable[[int, int], None] | None = None) -> dict:
        """Every (repeat, strategy) lineage to the end; returns the summary."""
        tf.config.experimental.enable_op_determinism()  # a resumed campaign repeats the numbers exactly
        total = len(self.lineages()) * self.options.iterations
        for repeat, strategy in self.lineages():
            name = f"{strategy}-{repeat}"
            lineage = self.state["lineages"].get(name) or {"done": 0, "labelled": self._initial(repeat)}
            while lineage["done"] < self.options.iterations:
                lineage = self._iteration(repeat, strategy, lineage)
                if progress:
                    progress(sum(v["done"] for v in self.state["lineages"].values()), total)
        return self.summarise()

    def _initial(self, repeat: int) -> list[str]:
        rng = np.random.default_rng(lineage_seed(self.options.seed, repeat, 0))
        return sorted(rng.choice(self.pool.ids, self.options.initial, replace=False).tolist())

    def _iteration(self, repeat: int, strategy: str, lineage: dict) -> dict:
        """Train, evaluate, acquire; then save weights, rows and state (the state last)."""
        options, iteration, name = self.options, lineage["done"], f"{strategy}-{repeat}"
        seed = lineage_seed(options.seed, repeat, iteration + 1)
        weights = self.out / "weights" / f"{name}.weights.h5"
        model = self._model(seed, weights if options.warm_start and iteration else None)
        train_loss = self._fit(model, lineage["labelled"], seed)
        row = {"strategy": strategy, "repeat": repeat, "iteration": iteration,
               "labelled": len(lineage["labelled"]), "new_labels": len(lineage["labelled"]) - options.initial,
               "train_loss": train_loss, **self._evaluate(model, seed)}
        acquired = []
        if iteration < options.iterations - 1:
            acquired = self._acquire(model, strategy, lineage["labelled"], seed)
        with replaced_atomically(weights, ".weights.h5") as temporary:
            model.save_weights(temporary)
        position = {gid: i for i, gid in enumerate(self.pool.ids)}
        self.state["acquired"] += [{"strategy": strategy, "repeat": repeat, "iteration": iteration, "id": gid,
                                    "observed_fraction": float(self.pool.observed_fraction[position[gid]]),
                                    **({"true_rho": float(self.pool.truth[position[gid]])}
                                       if self.pool.truth is not None else {})} for gid in acquired]
        self.state["results"].append(row)
        lineage = {"done": iteration + 1, "labelled": sorted(lineage["labelled"] + acquired)}
        self.state["lineages"][name] = lineage
        self._write_tables()
        write_json_atomic(self.out / STATE, self.state)
        return lineage

    def _model(self, seed: int, weights: Path | None) -> keras.Model:
        keras.utils.set_random_seed(seed)
        model = vote_network(self.training, 1, [self.head])
        if weights is not None:  # before compiling: a fresh optimizer each iteration, its saved state unused
            model.load_weights(weights)
        return compile_votes(model, self.training, jit="auto")  # Keras decides: XLA on GPUs, not on CPUs

    def _fit(self, model: keras.Model, labelled: list[str], seed: int) -> float:
        """Train ``epochs`` epochs and keep the weights of the epoch with the best validation loss."""
        options = self.options
        steps = math.ceil(len(labelled) / options.batch_size)
        dataset = vote_dataset(self.data, "train", [self.head], self.augmentation, options.batch_size, seed,
                               options.min_votes, epochs=(0, options.epochs), only_ids=labelled).apply(
            tf.data.experimental.assert_cardinality(steps * options.epochs))
        best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.epochs, restore_best_weights=True)
        history = model.fit(dataset, epochs=options.epochs, steps_per_epoch=steps, verbose=0, shuffle=False,
                            validation_data=self._split_dataset("val", self.val, seed), callbacks=[best]).history
        return float(history["loss"][int(np.argmin(history["val_loss"]))])

    def _split_dataset(self, split: str, table: VoteTable, seed: int) -> tf.data.Dataset:
        """A whole split, deterministic view, with its length known (so Keras never probes for the end)."""
        return vote_dataset(self.data, split, [self.head], self.augmentation, self.options.batch_size, seed,
                            self.options.min_votes).apply(
            tf.data.experimental.assert_cardinality(math.ceil(len(table.ids) / self.options.batch_size)))

    def _sampler(self, model: keras.Model, seed: int) -> Sampler:
        return Sampler(model, self.augmentation, self.options.passes, self.options.tta, seed)

    def _logits(self, model: keras.Model, split: str, wanted: VoteTable, seed: int) -> np.ndarray:
        """MC samples of the logits (galaxies, passes, outputs) for the galaxies of ``wanted``, in its order."""
        sampler, keep = self._sampler(model, seed), set(wanted.indices.tolist())
        found: dict[int, np.ndarray] = {}
        for batch in RecordSource(self.data, split).batches(self.options.batch_size * 4):
            chosen = np.array([i in keep for i in batch.indices])
            if chosen.any():
                logits = sampler.logits(batch.images[chosen], batch.indices[chosen]).numpy()
                found.update(zip(batch.indices[chosen].tolist(), logits, strict=True))
        return np.stack([found[i] for i in wanted.indices.tolist()])

    def _evaluate(self, model: keras.Model, seed: int) -> dict:
        """Test loss per galaxy, RMSE of the MC mean rho against k/N (and the true rho when simulated)."""
        eval_loss = float(model.evaluate(self._split_dataset("test", self.test, seed), verbose=0))
        logits = self._logits(model, "test", self.test, seed)
        mean_rho = tf.sigmoid(self.head.logits(logits)).numpy()[..., 0].mean(axis=1)
        result = {"eval_loss": eval_loss,
                  "rmse": float(np.sqrt(np.mean((mean_rho - self.test.observed_fraction) ** 2)))}
        if self.test.truth is not None:
            result["rmse_truth"] = float(np.sqrt(np.mean((mean_rho - self.test.truth) ** 2)))
        return result

    def _acquire(self, model: keras.Model, strategy: str, labelled: list[str], seed: int) -> list[str]:
        """The ``step`` unlabelled pool galaxies the strategy ranks highest."""
        taken = set(labelled)
        unlabelled = np.array([gid not in taken for gid in self.pool.ids])
        candidates = VoteTable(self.pool.ids[unlabelled], self.pool.indices[unlabelled],
                               self.pool.targets[unlabelled], None)
        scorer = Scorer(strategy, [self.head], {self.head.question: self._total_votes(labelled)},
                        {}, seed)
        logits = np.zeros((len(candidates.ids), 1, 1)) if strategy == "random" else \
            self._logits(model, "train", candidates, seed)  # random needs no samples
        scores = scorer(logits, candidates.indices)
        order = np.lexsort((candidates.indices, -scores))  # highest first; ties by record order
        return candidates.ids[order[:self.options.step]].tolist()

    def _total_votes(self, labelled: list[str]) -> int:
        """N for BALD: the mean N of the labelled galaxies (the expected responses)."""
        taken = np.isin(self.pool.ids, labelled)
        return max(1, round(float(self.pool.targets[taken, -1].mean())))

    def _write_tables(self) -> None:
        for name, rows in ((RESULTS, self.state["results"]), (ACQUIRED, self.state["acquired"])):
            with replaced_atomically(self.out / name) as temporary:
                pd.DataFrame(rows).to_csv(temporary, index=False)

    def summarise(self) -> dict:
        return write_report(self.out, pd.DataFrame(self.state["results"]), pd.DataFrame(self.state["acquired"]),
                            self.options, self.settings)


def run_campaign(data: Path, out: Path, options: CampaignOptions, resume: bool = False, overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """`galzoo acquire simulate` whole: set up (or resume) the campaign in ``out``, run it, return its summary.

    >>> run_campaign(Path("data/synthetic"), Path("data/campaigns/bar"),
    ...              CampaignOptions(image_size=64, epochs=8, iterations=6, repeats=3))  # doctest: +SKIP
    """
    with writing([Output.directory(out, markers=(STATE,))], [("records", data)]):
        return Campaign(data, out, options, resume=resume, overwrite=overwrite).run(progress)
