"""`galzoo acquire`: rank an unlabelled pool and write the galaxies volunteers should label next.

The pool is streamed batch by batch and only a running top n is kept (plus a few images for
the montage), so pools far larger than memory are fine. Galaxies already in the model's
training records (any split: train, validation or test) and ids in ``exclude`` are never
picked.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Set
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from galzoo_tf import __version__
from galzoo_tf.active.scores import JOINT, Scorer
from galzoo_tf.catalogues.formats import provenance_path
from galzoo_tf.data.inputs import FolderSource, ImageInputs, Partition, RecordSource, partitions
from galzoo_tf.engine import LOCAL, Engine, EngineSpec, Starter, running, worker_cache
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import replaced_atomically, write_json_atomic
from galzoo_tf.outputs import Output, writing
from galzoo_tf.plots import montage
from galzoo_tf.schema import Schema, schema_of
from galzoo_tf.tasks.registry import load_model
from galzoo_tf.tasks.votes.model import VoteModel
from galzoo_tf.tasks.votes.posterior import Sampler

FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")  # .txt, .csv, .list: not the digits of an id

@dataclass(frozen=True)
class AcquireOptions:
    """What to pick and how the posteriors are sampled."""

    n: int = 128
    strategy: str = "bald"
    passes: int = 30
    tta: bool = True
    seed: int = 0
    batch_size: int = 32
    total_votes: int | None = None  # N for every question (default: the training galaxies' mean N)
    question: str | None = None  # score this question only (default: every head, weighted)
    tree_votes: bool | None = None  # each galaxy's N from the tree; None: when the model answers the whole tree
    montage: int = 8  # galaxies per row of the montage


class RunningTop:
    """The n highest-scoring rows seen so far (ties: earlier in the input first); memory O(n + batch)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.scores, self.order = np.empty(0), np.empty(0, np.int64)
        self.rows: dict[str, np.ndarray] = {}

    def add(self, scores: np.ndarray, order: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        scores = np.concatenate([self.scores, scores])
        order = np.concatenate([self.order, order])
        keep = np.lexsort((order, -scores))[:self.n]
        self.scores, self.order = scores[keep], order[keep]
        self.rows = {k: np.concatenate([self.rows[k], v])[keep] if self.rows else np.asarray(v)[keep]
                     for k, v in rows.items()}

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class AcquireResult:
    path: Path
    montage: Path
    scored: int
    excluded: dict[str, int] = field(default_factory=dict)


def labelled_ids(model: VoteModel, records: Path | None = None) -> set[str]:
    """Ids of every galaxy in the labelled records (train, val and test splits): ``records``, or by default
    the records the model was trained on; a folder without records is an error, never an empty set."""
    folder = Path(records or model.sidecar.get("data", {}).get("path", ""))
    if not (folder / "manifest.json").is_file():
        reason = "no labelled records here (no manifest.json); --labelled must name the record folder of the " \
                 "labelled galaxies" if records else f"the records {model.path} was trained on are not there; " \
                 "pass --labelled RECORDS so that labelled galaxies are never picked"
        raise BadInputError("labelled records not found", f"{folder}: {reason}")
    return set(RecordSource(folder).columns()["id"])


def names_file(value: str) -> bool:
    """An ``--exclude`` value that looks like a path (a separator, or a suffix such as .txt), not a galaxy id."""
    return "/" in value or os.sep in value or FILE_SUFFIX.search(value) is not None


def _exclusion_file(path: Path) -> set[str]:
    """The ids of an exclusion list: .txt one per line, .csv an 'id' column."""
    if path.suffix.lower() == ".txt":
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    if path.suffix.lower() != ".csv":
        raise BadInputError("bad option", f"--exclude {path}: an exclusion list is a .txt (one id per line) or "
                                          "a .csv (an 'id' column)")
    try:
        table = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BadInputError("unreadable file", f"--exclude {path}: not a readable CSV ({str(exc).strip()})") from None
    if "id" not in table.columns:
        raise BadInputError("missing column", f"--exclude {path}: no 'id' column (it has {', '.join(table.columns)})")
    return set(table["id"].dropna())


def read_exclusions(values: Iterable[str]) -> set[str]:
    """``--exclude`` values: ids, or files (.txt: one id per line; .csv: an 'id' column).

    A value that looks like a path but names no file is an error, never an id: a typo would
    otherwise exclude nothing, and galaxies already sent to volunteers would be sent again.
    """
    ids: set[str] = set()
    for value in values:
        path = Path(value)
        if path.is_file():
            ids |= _exclusion_file(path)
        elif names_file(value):
            raise BadInputError("missing file", f"--exclude {value}: no such file (it looks like a path, not a "
                                                "galaxy id); check the name")
        else:
            ids.add(value)
    return ids


def _scorer(model: VoteModel, options: AcquireOptions) -> Scorer:
    """The strategy's scorer at each galaxy's expected N from the tree (a whole-tree model), else one N."""
    heads = model.heads
    names = [h.question for h in heads]
    if options.strategy in JOINT:
        raise BadInputError("bad option", f"--strategy {options.strategy}: it needs weight samples shared across "
                                          "galaxies, which a vote CNN's per-galaxy dropout masks are not; it runs "
                                          "in `galzoo acquire simulate --representation` (docs/acquisition.md)")
    if options.question is not None and options.question not in names:
        raise BadInputError("bad option", f"--question {options.question}: the model answers {', '.join(names)}")
    votes = {h.question: options.total_votes or model.total_votes(h) for h in heads}
    weights = {h.question: model.asked_fraction(h) for h in heads}
    tree = _tree_for_votes(model, options)
    volunteers = votes[tree.root] if tree else 0
    return Scorer(options.strategy, heads, votes, weights, options.seed, tree=tree, volunteers=volunteers,
                  scored=(options.question,) if options.question else ())


def _tree_for_votes(model: VoteModel, options: AcquireOptions) -> Schema | None:
    """The tree that gives each galaxy its N, if asked for (or by default) and the model answers enough of it."""
    tree = schema_of(model.sidecar)
    scored = [options.question] if options.question else [h.question for h in model.heads]
    leading = set().union(*(tree.ancestors(q) for q in scored)) | {tree.root}
    missing = sorted(leading - {h.question for h in model.heads})
    if options.tree_votes is False or (options.tree_votes is None and (missing or options.total_votes)):
        return None
    if missing:
        raise BadInputError("bad option", f"--tree-votes: the model has no head for {', '.join(missing)}, so it "
                                          "cannot say who reaches each question; use a whole-tree model such as "
                                          "--model base, or --mean-votes")
    return tree


def _rho_columns(model: VoteModel, logits: np.ndarray) -> dict[str, np.ndarray]:
    columns = {}
    for head in model.heads:
        rho = head.rho(tf.convert_to_tensor(logits)).numpy().mean(axis=1)
        columns.update({f"{head.question}_{a}_rho_mean": rho[:, i] for i, a in enumerate(head.all_answers)})
    return columns


@dataclass
class Ranking:
    """What scoring a pool, or one partition of it, leaves: the top n, the montage's ends and the counts."""

    top: RunningTop
    best: RunningTop
    worst: RunningTop
    read: int = 0  # input galaxies read (bad images included)
    excluded: int = 0  # of them, labelled or excluded
    skipped_bad: Counter = field(default_factory=Counter)

    @classmethod
    def empty(cls, options: AcquireOptions) -> Ranking:
        return cls(RunningTop(options.n), RunningTop(options.montage), RunningTop(options.montage))

    def merge(self, other: Ranking) -> None:
        """Fold in a partition's ranking: ties are broken by input index, so the merge equals one pass."""
        for mine, theirs in ((self.top, other.top), (self.best, other.best), (self.worst, other.worst)):
            if len(theirs):
                mine.add(theirs.scores, theirs.order, theirs.rows)
        self.read += other.read
        self.excluded += other.excluded
        self.skipped_bad.update(other.skipped_bad)


@dataclass(frozen=True)
class AcquireJob:
    """What a worker needs to rank any partition: the model directory (a path), options, ids never to pick."""

    model: str
    checksum: str
    options: AcquireOptions
    excluded: frozenset[str]

    def scoring(self) -> tuple[VoteModel, Scorer, Sampler]:
        """Model, scorer and sampler, built once per worker process."""
        return worker_cache(("acquisition sampler", self.model, self.checksum, self.options), self._build)

    def _build(self) -> tuple[VoteModel, Scorer, Sampler]:
        model = load_model(self.model, "votes")
        return model, _scorer(model, self.options), model.sampler(self.options.passes, self.options.tta,
                                                                    self.options.seed)


def rank(model: VoteModel, scorer: Scorer, sampler: Sampler, source: RecordSource | FolderSource,
         options: AcquireOptions, excluded: Set[str], progress: Callable[[int, int], None] | None = None,
         ) -> Ranking:
    """Score every galaxy of ``source`` not in ``excluded``, keeping only the running top n and montage ends."""
    ranking = Ranking.empty(options)
    for batch in source.batches(options.batch_size):
        ranking.read += batch.consumed
        chosen = np.array([gid not in excluded for gid in batch.ids], bool)
        ranking.excluded += int((~chosen).sum())
        if chosen.any():
            ids, indices = np.asarray(batch.ids)[chosen], batch.indices[chosen]
            logits = sampler.logits(batch.images[chosen], indices).numpy()
            scores = scorer(logits, indices)
            ranking.top.add(scores, indices, {"id": ids, **_rho_columns(model, logits)})
            ranking.best.add(scores, indices, {"id": ids, "image": batch.images[chosen]})
            ranking.worst.add(-scores, indices, {"id": ids, "image": batch.images[chosen]})
        if progress:
            progress(ranking.read, source.total)
    ranking.skipped_bad.update(source.skipped)
    return ranking


def rank_part(part: Partition, job: AcquireJob) -> Ranking:
    """Worker side: the ranking of one partition of the pool (map step of a distributed acquire)."""
    model, scorer, sampler = job.scoring()
    return rank(model, scorer, sampler, part.source, job.options, job.excluded)


def rank_partitioned(model: VoteModel, source: RecordSource | FolderSource, options: AcquireOptions,
                     excluded: Set[str], engine: Engine, progress: Callable[[int, int], None] | None = None,
                     ) -> Ranking:
    """Rank every partition on ``engine`` and merge the per-partition top n (map-reduce)."""
    job = AcquireJob(str(model.path.resolve()), model.checksum(), options, frozenset(excluded))
    ranking = Ranking.empty(options)
    for _, part_ranking in engine.run(rank_part, partitions(source), job):
        ranking.merge(part_ranking)
        if progress:
            progress(ranking.read, source.total)
    return ranking


def acquire(model: VoteModel, source: RecordSource | FolderSource, out: Path, options: AcquireOptions,
            excluded: Set[str] = frozenset(), progress: Callable[[int, int], None] | None = None,
            engine: Engine | None = None, labelled: Path | None = None) -> AcquireResult:
    """Score every galaxy of the pool that is neither labelled nor in ``excluded``; write the top n to ``out``
    (CSV) and a montage.

    Labelled galaxies (every split of ``labelled``, default the model's own training records)
    are never picked: a missing record folder is an error, not an empty set. Without ``engine``
    the pool is streamed in this process; with one, its partitions are ranked in parallel and
    merged, with the same result.

    >>> model = load_model("data/demo/bar-model", "votes")  # doctest: +SKIP
    >>> acquire(model, RecordSource("data/demo/pool"), Path("next.csv"), AcquireOptions(n=128))  # doctest: +SKIP
    """
    out = list_path(out)
    if options.n < 1 or options.n > source.total:
        raise BadInputError("bad option", f"--n {options.n}: the pool has {source.total} galaxies")
    excluded = set(excluded) | labelled_ids(model, labelled)
    scorer = _scorer(model, options)
    ranking = rank_partitioned(model, source, options, excluded, engine, progress) if engine is not None else \
        rank(model, scorer, model.sampler(options.passes, options.tta, options.seed), source, options, excluded,
             progress)
    if len(ranking.top) < options.n:
        raise BadInputError("pool too small", f"only {len(ranking.top)} galaxies of the pool are unlabelled and "
                                              f"not excluded ({ranking.excluded} were); ask for at most --n "
                                              f"{len(ranking.top)}")
    scored = ranking.read - ranking.excluded - sum(ranking.skipped_bad.values())
    _write_list(out, ranking.top, options)
    picture = _montage(out, ranking.best, ranking.worst, options.strategy)
    write_json_atomic(provenance_path(out), {
        "galzoo_version": __version__, "seed": options.seed, "options": asdict(options),
        "model": {"path": str(model.path.resolve()), "sha256": model.checksum()},
        "pool": source.describe(), "scored": scored,
        "excluded": ranking.excluded, "skipped_bad": dict(ranking.skipped_bad),
        "total_votes": dict(scorer.total_votes), "question_weights": dict(scorer.weights),
        "votes_from_tree": scorer.tree is not None, "volunteers": scorer.volunteers})
    return AcquireResult(out, picture, scored, {"labelled or excluded": ranking.excluded, **ranking.skipped_bad})


def _write_list(out: Path, top: RunningTop, options: AcquireOptions) -> None:
    table = pd.DataFrame({"rank": np.arange(1, len(top) + 1), "id": top.rows["id"], "score": top.scores,
                          "strategy": options.strategy,
                          **{k: v for k, v in top.rows.items() if k != "id"}})
    with replaced_atomically(out) as temporary:
        table.to_csv(temporary, index=False)


def list_path(out: str | Path, what: str = "the acquisition list", option: str = "") -> Path:
    """The path of a ranked list of galaxies (acquire, similar, anomalies), which must be a .csv file."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise BadInputError("bad option", f"{option}{out}: {what} is a .csv file")
    return out


def montage_path(out: Path) -> Path:
    """The montage beside a ranked list (``NAME-montage.png``)."""
    return out.with_name(out.stem + "-montage.png")


def _montage(out: Path, best: RunningTop, worst: RunningTop, strategy: str) -> Path:
    """Most informative galaxies on the first row, least on the second (Walmsley et al. 2019, Figs. 15-16)."""
    images = [*best.rows["image"], *worst.rows["image"]]
    titles = [f"{label} {i + 1}: {sign * s:.3g}\n{gid[-22:]}"
              for label, sign, kept in (("top", 1, best), ("bottom", -1, worst))
              for i, (s, gid) in enumerate(zip(kept.scores, kept.rows["id"], strict=True))]
    return montage(images, titles, montage_path(out), columns=len(best),
                   title=f"{strategy}: most informative (top row) and least informative (bottom row)")


def acquire_pool(model_dir: Path, pool: ImageInputs, out: Path, options: AcquireOptions,
                 exclude: Iterable[str] = (), labelled: Path | None = None,
                 progress: Callable[[int, int], None] | None = None, engine: EngineSpec = LOCAL,
                 start: Starter = running) -> AcquireResult:
    """`galzoo acquire` whole: the vote model, the pool, the ids never to pick (``exclude``: ids or .txt/.csv
    files of them; labelled galaxies are refused anyway), then the engine (``start``: how it is started) and the
    list.

    >>> acquire_pool(Path("data/demo/bar-model"), ImageInputs(records=Path("data/demo/pool")),
    ...              Path("data/demo/acquired.csv"), AcquireOptions(n=128))  # doctest: +SKIP
    """
    out, exclude = list_path(out), list(exclude)
    inputs = [("model directory", model_dir), *pool.paths(), ("labelled records", labelled),
              *[("exclusion list", value) for value in exclude if names_file(value)]]
    with writing([Output.file(out, also=[montage_path(out), provenance_path(out)])], inputs):
        excluded = read_exclusions(exclude)
        model = load_model(model_dir, "votes")
        source = pool.open(model.image)
        with start(engine) as started:
            return acquire(model, source, out, options, excluded, progress, started, labelled)
