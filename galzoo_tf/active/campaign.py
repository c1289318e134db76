"""Simulated active-learning campaigns (Walmsley et al. 2019, §3.5): how many labels BALD saves over random.

The records' test split is the fixed test set; the pool is the train split (galaxies with
at least ``min_votes`` votes for the question, whose stored votes stand in for volunteers).
Each repeat draws an initial random labelled set (shared by every strategy of the repeat,
so strategies are compared on paired runs), then per iteration: train on the labelled set,
measure loss and RMSE on the test set, score the rest of the pool with the strategy, and
reveal the votes of the ``step`` best.

What trains is a learner (``learners.py``). By default the whole vote CNN on images: the
validation split picks each iteration's best epoch, or it trains exactly ``steps`` steps;
``warm_start`` continues from the previous iteration's weights. With ``representation`` (a
trained vote model that never learned the question, e.g. ``train --leave-out bar``), the
pool, test and validation galaxies are embedded once by its trunk (cached in the campaign
folder) and each iteration trains only an MC-dropout head on the labelled features, from
scratch, for exactly ``steps`` steps: the paper's protocol on a pretrained trunk, seconds
per iteration. Its samples are weight samples shared by every galaxy (MC dropout with one
mask per pass, or an ``ensemble`` of heads), so EPIG can score pool galaxies against target
ones. When that model answers the questions before this one, each galaxy's N for BALD is the
volunteers times its predicted chance of reaching the question. State is saved
after every iteration, so a killed campaign resumes at the last finished one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from galzoo_tf import __version__
from galzoo_tf.active.learners import (
    FEATURES,
    FeatureLearner,
    ImageLearner,
    Learner,
    embed_split,
    read_features,
    standardised,
    write_features,
)
from galzoo_tf.active.reach import expected_votes
from galzoo_tf.active.report import ACQUIRED_FIGURE, RMSE_FIGURE, write_report
from galzoo_tf.active.scores import JOINT, STRATEGIES, Scorer
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.data.records import read_manifest
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import changed_keys, read_json, replaced_atomically, write_json_atomic
from galzoo_tf.outputs import Output, remove_written, writing
from galzoo_tf.schema import schema_of
from galzoo_tf.tasks.registry import load_model
from galzoo_tf.tasks.votes.heads import heads_for
from galzoo_tf.tasks.votes.model import VoteModel
from galzoo_tf.tasks.votes.targets import VoteTable, vote_table
from galzoo_tf.tasks.votes.task import augment_config
from galzoo_tf.training.config import TrainConfig

STATE, RESULTS, ACQUIRED, SUMMARY = "state.json", "results.csv", "acquired.csv", "summary.json"
SPLITS = ("train", "test", "val")  # pool, fixed test set, validation (best epoch of image learners)
HEAD_STEPS = 1000  # per iteration, a head on features trained from scratch
EPIG_TARGETS = 128  # target galaxies per EPIG acquisition: a sample of the pool, the distribution predicted for


@dataclass(frozen=True)
class CampaignOptions:
    """Every choice that shapes a campaign; a resumed campaign must use the same."""

    question: str = "bar"
    initial: int = 512
    step: int = 256
    iterations: int = 20
    repeats: int = 4
    strategies: tuple[str, ...] = ("bald", "random")
    epochs: int = 10  # per iteration, image learner without steps
    steps: int | None = None  # per iteration: exactly this many (default: epochs for images, HEAD_STEPS on features)
    image_size: int = 128
    batch_size: int = 64
    passes: int = 30
    tta: bool = False  # pool scoring: MC dropout only (trunk once per galaxy) unless asked
    warm_start: bool | None = None  # default: on for images, off (the paper's from-scratch heads) on features
    min_votes: int = 1
    dropout: float = 0.5
    learning_rate: float = 1e-3
    representation: str | None = None  # a vote model directory or "base": train heads on its trunk's features
    hidden: int = 0  # features: units of a hidden ReLU layer before the MC dropout (0: a linear head)
    tree_votes: bool | None = None  # features: N from the representation's tree (default: when it can)
    ensemble: int = 1  # features: heads trained side by side, their members the samples (1: MC dropout)
    seed: int = 0

    def training(self) -> TrainConfig:
        """The training settings of every iteration, as a `galzoo train` run would have them."""
        return TrainConfig(question=self.question, batch_size=self.batch_size, image_size=self.image_size,
                           dropout=self.dropout, learning_rate=self.learning_rate, min_votes=self.min_votes)

    @property
    def warm(self) -> bool:
        return (self.representation is None) if self.warm_start is None else self.warm_start

    def check(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise BadInputError("bad option", f"--strategies must be among {', '.join(STRATEGIES)}, "
                                              f"not {','.join(self.strategies)}")
        for name in ("initial", "step", "iterations", "repeats", "epochs", "passes", "batch_size"):
            if getattr(self, name) < 1:
                raise BadInputError("bad option", f"--{name.replace('_', '-')} must be at least 1")
        if self.steps is not None and self.steps < 1:
            raise BadInputError("bad option", "--steps must be at least 1")
        if self.ensemble < 1:
            raise BadInputError("bad option", "--ensemble must be at least 1")
        if self.representation is None and (self.hidden or self.tree_votes or self.ensemble > 1):
            raise BadInputError("bad option", "--hidden, --tree-votes and --ensemble apply with --representation")
        joint = sorted(set(self.strategies) & set(JOINT))
        if joint and self.representation is None:
            raise BadInputError("bad option", f"{', '.join(joint)} needs weight samples shared across galaxies, "
                                              "which the CNN's per-galaxy dropout masks are not: use "
                                              "--representation")


DISTANCE_TRUTH = ("truth/magnitude", "truth/r_e_arcsec")


def lineage_seed(seed: int, repeat: int, stage: int) -> int:
    """A distinct, reproducible seed per (campaign seed, repeat, stage): stage 0 draws the initial set,
    stage i + 1 is iteration i."""
    return int(np.random.SeedSequence([seed, repeat, stage]).generate_state(1)[0] % (2**31 - 1))


class Campaign:
    """One simulated campaign in a folder: options, data, state, and the loop over repeats and strategies."""

    def __init__(self, data: Path, out: Path, options: CampaignOptions, resume: bool = False,
                 overwrite: bool = False, progress: Callable[[int, int], None] | None = None) -> None:
        options.check()
        self.data, self.out, self.options = Path(data), Path(out), options
        self.schema = schema_of(read_manifest(self.data))
        self.head = heads_for(self.schema, [options.question])[0]
        self.training = options.training()
        self.pool, self.test, self.val = (self._votes(split) for split in SPLITS)
        self.pool_truth = self._pool_truth()
        needed = options.initial + options.step * (options.iterations - 1)
        if needed > len(self.pool.ids):
            raise BadInputError("pool too small", f"--initial {options.initial} + {options.iterations - 1} x "
                                                  f"--step {options.step} = {needed} galaxies, but the train "
                                                  f"split has {len(self.pool.ids)} with votes for "
                                                  f"{options.question!r}")
        self.representation = self._representation()
        self.settings = {**asdict(options), "strategies": list(options.strategies),
                         "data": str(self.data.resolve()), "fingerprint": read_manifest(self.data)["fingerprint"],
                         **({"representation_model": self.representation.describe()} if self.representation
                            else {})}
        self.state = self._start(resume, overwrite)
        self.learner, self.pool_votes = self._learner(progress)
        self.state["settings"]["votes_from_tree"] = self.pool_votes is not None

    def _votes(self, split: str) -> VoteTable:
        """A split's galaxies with at least ``min_votes`` votes for the question (none is an error)."""
        table = vote_table(self.data, split, [self.head], self.options.min_votes)
        if len(table.ids) == 0:
            raise BadInputError("no galaxies", f"{self.data}: no {split} galaxy has {max(self.options.min_votes, 1)} "
                                               f"votes for {self.head.question!r}")
        return table

    def _pool_truth(self) -> dict[str, np.ndarray]:
        """Each pool galaxy's true properties that stand in for distance on simulated records (magnitude and R_e:
        Walmsley et al. 2019 plot the redshift of what BALD acquires), read without images; none on real data."""
        manifest = read_manifest(self.data)
        keys = [key for key in DISTANCE_TRUTH if key in manifest.get("float_features", [])]
        if not keys:
            return {}
        columns = RecordSource(self.data, "train", keys).columns()
        return {key.removeprefix("truth/"): columns[key][self.pool.indices] for key in keys}

    def _representation(self) -> VoteModel | None:
        """The representation's vote model, refused if it has learned the campaign's question."""
        if self.options.representation is None:
            return None
        model = load_model(self.options.representation, "votes")
        if schema_of(model.sidecar).name == self.schema.name and \
                self.head.question in {h.question for h in model.heads}:
            raise BadInputError("bad option", f"{model.path}: this model has learned {self.head.question!r}, so "
                                              "its trunk would already know the answers the campaign reveals; "
                                              "use one trained without it (galzoo train --question all "
                                              f"--leave-out {self.head.question})")
        return model

    def _learner(self, progress: Callable[[int, int], None] | None) -> tuple[Learner, np.ndarray | None]:
        """The learner, and each pool galaxy's N for BALD from the tree (None: one N for all)."""
        options = self.options
        if self.representation is None:
            return ImageLearner(self.data, self.head, self.training, augment_config(self.training, self.schema),
                                self.val, options.epochs, options.steps, options.passes, options.tta), None
        features, reach_rho = self._features(progress)
        learner = FeatureLearner(standardised(features), self.head, self.training, options.steps or HEAD_STEPS,
                                 options.hidden, options.passes, options.ensemble)
        return learner, self._pool_votes(reach_rho)

    def _ancestors(self) -> list[str]:
        return sorted(self.schema.ancestors(self.head.question) | {self.schema.root})

    def _features(self, progress: Callable[[int, int], None] | None) -> tuple[dict, dict]:
        """Every split's features (and the pool's rho of the questions before this one), embedded once."""
        path = self.out / FEATURES
        if not path.is_file():
            total = sum(RecordSource(self.data, split).total for split in SPLITS)
            done, arrays = 0, {}

            def advance(count: int) -> None:
                nonlocal done
                done += count
                if progress:
                    progress(done, total)

            for split in SPLITS:
                rows, rho = embed_split(self.representation, self.data, split,
                                        self._ancestors() if split == "train" else [], self.options.seed, advance)
                arrays[f"features/{split}"] = rows
                arrays.update({f"rho/{q}": r for q, r in rho.items()})
            write_features(path, arrays)
        stored = read_features(path)
        return ({split: stored[f"features/{split}"] for split in SPLITS},
                {key.removeprefix("rho/"): value for key, value in stored.items() if key.startswith("rho/")})

    def _pool_votes(self, rho: dict[str, np.ndarray]) -> np.ndarray | None:
        """Volunteers x P(reach the question) per pool record, when the tree is asked for (or by default) and
        the representation answers every question before it; else None."""
        missing = sorted(set(self._ancestors()) - set(rho))
        if self.options.tree_votes is False or (missing and self.options.tree_votes is None):
            return None
        if missing:
            raise BadInputError("bad option", f"--tree-votes: the representation has no head for "
                                              f"{', '.join(missing)}, so it cannot say who reaches "
                                              f"{self.head.question!r}; use --mean-votes")
        volunteers = self._volunteers()
        reach = expected_votes(self.schema, rho, volunteers, [self.head.question])[self.head.question]
        return reach

    def _volunteers(self) -> int:
        """Volunteers who start the tree per galaxy: the pool's mean N at the root."""
        root = heads_for(self.schema, [self.schema.root])[0]
        table = vote_table(self.data, "train", [root], self.options.min_votes, filter_head=self.head)
        return max(1, round(float(table.targets[:, -1].mean())))

    def _start(self, resume: bool, overwrite: bool) -> dict:
        state_path = self.out / STATE
        if state_path.is_file() and not resume:
            if not overwrite:
                raise BadInputError("output exists", f"{self.out} holds a campaign; pass --resume to continue "
                                                     "it or --overwrite to start again")
            remove_written(self.out, [STATE, RESULTS, ACQUIRED, SUMMARY, RMSE_FIGURE, ACQUIRED_FIGURE, FEATURES])
            shutil.rmtree(self.out / "weights", ignore_errors=True)
        if resume and state_path.is_file():
            state = read_json(state_path)
            changed = changed_keys({k: v for k, v in state["settings"].items() if k != "votes_from_tree"},
                                   self.settings)
            if changed:
                raise BadInputError("resume mismatch", f"{self.out}: the campaign used other "
                                                       f"{', '.join(changed)}; use the same options")
            return state
        (self.out / FEATURES).unlink(missing_ok=True)  # a fresh campaign embeds again
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

    def _subset(self, chosen: np.ndarray) -> VoteTable:
        """The pool galaxies where ``chosen`` (a boolean mask over the pool) is true."""
        pool = self.pool
        return VoteTable(pool.ids[chosen], pool.indices[chosen], pool.targets[chosen],
                         None if pool.truth is None else pool.truth[chosen])

    def _iteration(self, repeat: int, strategy: str, lineage: dict) -> dict:
        """Train, evaluate, acquire; then save weights, rows and state (the state last)."""
        options, iteration, name = self.options, lineage["done"], f"{strategy}-{repeat}"
        seed = lineage_seed(options.seed, repeat, iteration + 1)
        weights = self.out / "weights" / f"{name}.weights.h5"
        model = self.learner.build(seed, weights if options.warm and iteration else None)
        labelled = np.isin(self.pool.ids, lineage["labelled"])
        train_loss = self.learner.fit(model, self._subset(labelled), seed)
        row = {"strategy": strategy, "repeat": repeat, "iteration": iteration,
               "labelled": len(lineage["labelled"]), "new_labels": len(lineage["labelled"]) - options.initial,
               "train_loss": train_loss, **self._evaluate(model, seed)}
        acquired = []
        if iteration < options.iterations - 1:
            picked = self._acquire(model, strategy, labelled, seed)
            acquired = self.pool.ids[picked].tolist()
            similarity = self.learner.batch_similarity(self.pool.indices[picked])
            if similarity is not None:
                row["batch_similarity"] = similarity
            self.state["acquired"] += [self._acquired_row(strategy, repeat, iteration, i) for i in picked]
        with replaced_atomically(weights, ".weights.h5") as temporary:
            model.save_weights(temporary)
        self.state["results"].append(row)
        lineage = {"done": iteration + 1, "labelled": sorted(lineage["labelled"] + acquired)}
        self.state["lineages"][name] = lineage
        self._write_tables()
        write_json_atomic(self.out / STATE, self.state)
        return lineage

    def _acquired_row(self, strategy: str, repeat: int, iteration: int, position: int) -> dict:
        pool = self.pool
        return {"strategy": strategy, "repeat": repeat, "iteration": iteration, "id": pool.ids[position],
                "observed_fraction": float(pool.observed_fraction[position]),
                **({"true_rho": float(pool.truth[position])} if pool.truth is not None else {}),
                **{name: float(values[position]) for name, values in self.pool_truth.items()},
                **({"expected_votes": int(self.pool_votes[pool.indices[position]])}
                   if self.pool_votes is not None else {})}

    def _evaluate(self, model, seed: int) -> dict:
        """Test loss per galaxy, RMSE of the MC mean rho against k/N (and the true rho when simulated)."""
        logits = self.learner.logits(model, "test", self.test, seed)
        mean_rho = self.head.rho(tf.convert_to_tensor(logits)).numpy()[..., 0].mean(axis=1)
        result = {"eval_loss": self.learner.loss(model, "test", self.test, seed),
                  "rmse": float(np.sqrt(np.mean((mean_rho - self.test.observed_fraction) ** 2)))}
        if self.test.truth is not None:
            result["rmse_truth"] = float(np.sqrt(np.mean((mean_rho - self.test.truth) ** 2)))
        return result

    def _acquire(self, model, strategy: str, labelled: np.ndarray, seed: int) -> np.ndarray:
        """Pool positions of the ``step`` unlabelled galaxies the strategy ranks highest."""
        candidates = np.flatnonzero(~labelled)
        table = self._subset(~labelled)
        votes = self._total_votes(labelled) if self.pool_votes is None else self.pool_votes[table.indices]
        scorer = Scorer(strategy, [self.head], {self.head.question: votes}, {}, seed)
        logits = np.zeros((len(candidates), 1, 1)) if strategy == "random" else \
            self.learner.logits(model, "train", table, seed)  # random needs no samples
        targets = self.learner.logits(model, "train", self._targets(seed), seed) if strategy in JOINT else None
        scores = scorer(logits, table.indices, targets)
        order = np.lexsort((table.indices, -scores))  # highest first; ties by record order
        return candidates[order[:self.options.step]]

    def _targets(self, seed: int) -> VoteTable:
        """EPIG's target galaxies: ``EPIG_TARGETS`` drawn from the whole pool, the distribution predictions are for."""
        chosen = np.zeros(len(self.pool.ids), bool)
        chosen[np.random.default_rng(seed).choice(len(chosen), min(EPIG_TARGETS, len(chosen)), replace=False)] = True
        return self._subset(chosen)

    def _total_votes(self, labelled: np.ndarray) -> int:
        """N for BALD: the mean N of the labelled galaxies (the expected responses)."""
        return max(1, round(float(self.pool.targets[labelled, -1].mean())))

    def _write_tables(self) -> None:
        for name, rows in ((RESULTS, self.state["results"]), (ACQUIRED, self.state["acquired"])):
            with replaced_atomically(self.out / name) as temporary:
                pd.DataFrame(rows).to_csv(temporary, index=False)

    def summarise(self) -> dict:
        return write_report(self.out, pd.DataFrame(self.state["results"]), pd.DataFrame(self.state["acquired"]),
                            self.options, self.state["settings"])


def run_campaign(data: Path, out: Path, options: CampaignOptions, resume: bool = False, overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None,
                 embedding: Callable[[int, int], None] | None = None) -> dict:
    """`galzoo acquire simulate` whole: set up (or resume) the campaign in ``out``, run it, return its summary.

    >>> options = CampaignOptions(representation="data/trunk-without-bar", iterations=20, repeats=6)
    >>> run_campaign(Path("data/synthetic"), Path("data/campaigns/bar"), options)  # doctest: +SKIP
    """
    with writing([Output.directory(out, markers=(STATE,))], [("records", data)]):
        return Campaign(data, out, options, resume=resume, overwrite=overwrite, progress=embedding).run(progress)
