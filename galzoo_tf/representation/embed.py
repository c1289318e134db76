"""`galzoo embed`: the trunk's features of every galaxy, one fixed-length float32 vector per row.

An embedding is what a vote model's trunk makes of an image before the MC dropout head:
the representation Zoobot fine-tunes and searches. With ``views`` > 1 it is the mean over
that many augmented views (rotations, flips, crops: keyed by seed and galaxy, so the same
seed gives the same numbers). It streams and resumes like ``galzoo predict``, whose writers
it shares (one Parquet file, or one part per shard on any engine).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galzoo_tf.catalogues.formats import PROVENANCE, SETTINGS, provenance_path
from galzoo_tf.catalogues.partitioned import predict_partitioned
from galzoo_tf.catalogues.predict import predict
from galzoo_tf.catalogues.writer import PredictResult, catalogue_provenance
from galzoo_tf.data.inputs import Batch, FolderSource, ImageInputs, RecordSource
from galzoo_tf.engine import LOCAL, EngineSpec, LocalEngine, Starter, running
from galzoo_tf.errors import BadInputError
from galzoo_tf.outputs import Output, writing
from galzoo_tf.tasks.registry import load_model
from galzoo_tf.tasks.votes.model import VoteModel
from galzoo_tf.tasks.votes.posterior import DROPOUT_LAYER, Sampler

EMBEDDING = "embedding"


@dataclass(frozen=True)
class EmbedOptions:
    """How embeddings are made; all but batch size and part size shape the numbers."""

    views: int = 1  # augmented views averaged per galaxy (1: the un-augmented image)
    seed: int = 0
    batch_size: int = 64
    part_rows: int = 4096  # rows held before they are flushed to disk

    def __post_init__(self) -> None:
        if self.views < 1:
            raise BadInputError("bad option", f"--views must be at least 1, not {self.views}")


def embeddings(sampler: Sampler, images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(galaxies, width) float32: the trunk's features, averaged over the sampler's passes (augmented views)."""
    features = sampler.features(images, indices).numpy().astype(np.float32)
    return features.reshape(len(images), sampler.passes, -1).mean(axis=1)


class Embedding:
    """The catalogue kind of `galzoo embed` (rows: id and embedding), for the writers `galzoo predict` uses."""

    def catalogue_rows(self, models: Sequence[VoteModel], options: EmbedOptions,
                       out: Path) -> Callable[[Batch], dict[str, np.ndarray]]:
        sampler = models[0].sampler(options.views, options.views > 1, options.seed)
        return lambda batch: {"id": np.asarray(batch.ids), EMBEDDING: embeddings(sampler, batch.images, batch.indices)}

    def catalogue_provenance(self, models: Sequence[VoteModel], source: RecordSource | FolderSource,
                             options: EmbedOptions) -> Callable[[int], dict]:
        model = models[0]
        width = int(model.model.get_layer(DROPOUT_LAYER).input.shape[-1])
        columns = {"id": "galaxy id (record id, or image path relative to the folder without suffix)",
                   EMBEDDING: f"{width} float32: the trunk's features before the MC dropout head"
                              + (f", mean of {options.views} augmented views" if options.views > 1 else "")}
        return lambda rows: catalogue_provenance(source, options, rows, [model.describe()], columns, task="embed",
                                                 width=width, image=model.sidecar.get("image"))


def embed_catalogue(model_dir: Path, inputs: ImageInputs, out: Path, options: EmbedOptions,
                    engine: EngineSpec = LOCAL, start: Starter = running, resume: bool = False,
                    overwrite: bool = False, progress: Callable[[int, int], None] | None = None) -> PredictResult:
    """`galzoo embed` whole: a vote model, the input, and the embeddings file (or partitioned folder) ``out``.

    >>> embed_catalogue(Path("base"), ImageInputs(images=Path("cutouts")), Path("emb.parquet"),
    ...                 EmbedOptions())  # doctest: +SKIP
    """
    out = Path(out)
    partitioned = out.suffix == ""
    if not partitioned and out.suffix.lower() != ".parquet":
        raise BadInputError("bad option", f"--out {out}: embeddings are a .parquet file (or a folder of parts)")
    if engine.distributed and not partitioned:
        raise BadInputError("bad option", f"--out {out}: the Dask engine writes one Parquet part per shard; "
                                          "give --out DIR (a folder)")
    output = Output.directory(out, markers=(SETTINGS, PROVENANCE)) if partitioned else \
        Output.file(out, also=[provenance_path(out)])
    with writing([output], [*inputs.paths(), ("model directory", model_dir)]):
        model = load_model(model_dir, "votes")
        source = inputs.open(model.image)
        if not partitioned:
            return predict([model], source, out, options, resume, overwrite, progress, kind=Embedding())
        with start(engine) as started:
            return predict_partitioned([model], source, out, options, started or LocalEngine(), overwrite,
                                       progress=progress, kind=Embedding())
