"""`galzoo acquire`: rank an unlabelled pool and write the galaxies volunteers should label next.

The pool is streamed batch by batch and only a running top n is kept (plus a few images for
the montage), so pools far larger than memory are fine. Galaxies already in the model's
training records (any split: train, validation or test) and ids in ``exclude`` are never
picked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from galzoo_tf import __version__
from galzoo_tf.acquisition import Scorer
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import replaced_atomically, write_json_atomic
from galzoo_tf.inputs import FolderSource, RecordSource
from galzoo_tf.model_dir import VoteModel
from galzoo_tf.plots import montage


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
    """Ids of every galaxy in the model's training records (train, val and test splits)."""
    folder = Path(records or model.sidecar.get("data", {}).get("path", ""))
    if not (folder / "manifest.json").is_file():
        raise BadInputError("labelled records not found", f"{folder}: the records {model.path} was trained on "
                                                          "are not there; pass --labelled RECORDS so that "
                                                          "labelled galaxies are never picked")
    return set(RecordSource(folder).columns()["id"])


def read_exclusions(values: Iterable[str]) -> set[str]:
    """``--exclude`` values: ids, or files (.txt: one id per line; .csv: an 'id' column)."""
    ids: set[str] = set()
    for value in values:
        path = Path(value)
        if path.suffix in (".txt", ".csv") and path.is_file():
            ids |= set(pd.read_csv(path, dtype=str)["id"]) if path.suffix == ".csv" else \
                {line.strip() for line in path.read_text().splitlines() if line.strip()}
        else:
            ids.add(value)
    return ids


def _scorer(model: VoteModel, options: AcquireOptions) -> Scorer:
    heads = model.heads
    votes = {h.question: options.total_votes or model.total_votes(h) for h in heads}
    weights = {h.question: model.asked_fraction(h) for h in heads}
    return Scorer(options.strategy, heads, votes, weights, options.seed)


def _rho_columns(model: VoteModel, logits: np.ndarray) -> dict[str, np.ndarray]:
    columns = {}
    for head in model.heads:
        rho = head.rho(tf.convert_to_tensor(logits)).numpy().mean(axis=1)
        columns.update({f"{head.question}_{a}_rho_mean": rho[:, i] for i, a in enumerate(head.all_answers)})
    return columns


def acquire(model: VoteModel, source: RecordSource | FolderSource, out: Path, options: AcquireOptions,
            excluded: set[str], progress: Callable[[int, int], None] | None = None) -> AcquireResult:
    """Score every galaxy of the pool not in ``excluded``; write the top n to ``out`` (CSV) and a montage."""
    if out.suffix.lower() != ".csv":
        raise BadInputError("bad option", f"{out}: the acquisition list is a .csv file")
    if options.n < 1 or options.n > source.total:
        raise BadInputError("bad option", f"--n {options.n}: the pool has {source.total} galaxies")
    scorer, sampler = _scorer(model, options), model.sampler(options.passes, options.tta, options.seed)
    top, best, worst = RunningTop(options.n), RunningTop(options.montage), RunningTop(options.montage)
    done = skipped = 0  # input galaxies read; of them, labelled or excluded
    for batch in source.batches(options.batch_size):
        done += batch.consumed
        chosen = np.array([gid not in excluded for gid in batch.ids], bool)
        skipped += int((~chosen).sum())
        if chosen.any():
            ids, indices = np.asarray(batch.ids)[chosen], batch.indices[chosen]
            logits = sampler.logits(batch.images[chosen], indices).numpy()
            scores = scorer(logits, indices)
            top.add(scores, indices, {"id": ids, **_rho_columns(model, logits)})
            best.add(scores, indices, {"id": ids, "image": batch.images[chosen]})
            worst.add(-scores, indices, {"id": ids, "image": batch.images[chosen]})
        if progress:
            progress(done, source.total)
    if len(top) < options.n:
        raise BadInputError("pool too small", f"only {len(top)} galaxies of the pool are unlabelled and not "
                                              f"excluded ({skipped} were); ask for at most --n {len(top)}")
    scored = done - skipped - sum(source.skipped.values())
    _write_list(out, top, options)
    picture = _montage(out, best, worst, options.strategy)
    write_json_atomic(out.with_name(out.name + ".json"), {
        "galzoo_version": __version__, "seed": options.seed, "options": asdict(options),
        "model": {"path": str(model.path.resolve()), "sha256": model.checksum()},
        "pool": source.describe(), "scored": scored,
        "excluded": skipped, "skipped_bad": dict(source.skipped),
        "total_votes": dict(scorer.total_votes), "question_weights": dict(scorer.weights)})
    return AcquireResult(out, picture, scored, {"labelled or excluded": skipped, **source.skipped})


def _write_list(out: Path, top: RunningTop, options: AcquireOptions) -> None:
    table = pd.DataFrame({"rank": np.arange(1, len(top) + 1), "id": top.rows["id"], "score": top.scores,
                          "strategy": options.strategy,
                          **{k: v for k, v in top.rows.items() if k != "id"}})
    with replaced_atomically(out) as temporary:
        table.to_csv(temporary, index=False)


def _montage(out: Path, best: RunningTop, worst: RunningTop, strategy: str) -> Path:
    """Most informative galaxies on the first row, least on the second (Walmsley et al. 2019, Figs. 15-16)."""
    images = [*best.rows["image"], *worst.rows["image"]]
    titles = [f"{label} {i + 1}: {sign * s:.3g}\n{gid[-22:]}"
              for label, sign, kept in (("top", 1, best), ("bottom", -1, worst))
              for i, (s, gid) in enumerate(zip(kept.scores, kept.rows["id"], strict=True))]
    return montage(images, titles, out.with_name(out.stem + "-montage.png"), columns=len(best),
                   title=f"{strategy}: most informative (top row) and least informative (bottom row)")
