"""`galzoo similar` and `galzoo anomalies`: nearest neighbours and outliers among a file of embeddings.

Similarity is cosine similarity of embeddings (scikit-learn's exact NearestNeighbors: one
matrix product per query, about a second for a million 128-wide rows, so no approximate
index is needed at that scale). Anomalies are scored by an isolation forest on the
standardised embeddings, or by the mean cosine distance to the k nearest neighbours. Each
list comes with a montage of the galaxies, read back from the input the embeddings came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf import __version__
from galzoo_tf.active.acquire import list_path, montage_path
from galzoo_tf.catalogues.formats import PROVENANCE, provenance_path, read_part
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import read_json, replaced_atomically, sha256_file, write_json_atomic
from galzoo_tf.outputs import Output, writing
from galzoo_tf.representation.embed import EMBEDDING

ANOMALY_METHODS = ("isolation-forest", "knn")
KNN_NEIGHBOURS = 10  # neighbours behind the kNN anomaly score


@dataclass(frozen=True)
class Embeddings:
    """A file (or partitioned folder) written by `galzoo embed`: ids, vectors and its provenance."""

    path: Path
    ids: np.ndarray
    vectors: np.ndarray  # (galaxies, width) float32
    provenance: dict

    def row(self, galaxy_id: str) -> int:
        found = np.flatnonzero(self.ids == galaxy_id)
        if not len(found):
            raise BadInputError("unknown id", f"--id {galaxy_id}: not in {self.path} ({len(self.ids):,} galaxies, "
                                              f"e.g. {', '.join(self.ids[:3])})")
        return int(found[0])

    def checksum(self) -> str:
        return sha256_file(self.path) if self.path.is_file() else self.provenance.get("sha256", "")


def read_embeddings(path: Path) -> Embeddings:
    """The embeddings of a .parquet file or a partitioned folder; anything else is one clear line."""
    path = Path(path)
    meta = path / PROVENANCE if path.is_dir() else provenance_path(path)
    if not path.exists() or not meta.is_file():
        raise BadInputError("not embeddings", f"{path}: no embeddings file with its {meta.name} (from "
                                              "`galzoo embed`)")
    provenance = read_json(meta)
    parts = [path / name for name in provenance.get("parts", [])] if path.is_dir() else [path]
    try:
        tables = [read_part(part) for part in parts]
    except (OSError, ValueError) as error:
        raise BadInputError("not embeddings", f"{path}: cannot read it ({error})") from None
    if not tables or any(EMBEDDING not in t.colnames for t in tables):
        raise BadInputError("not embeddings", f"{path}: not written by `galzoo embed` (no {EMBEDDING} column)")
    ids = np.concatenate([np.asarray(t["id"]).astype(str) for t in tables])
    vectors = np.concatenate([np.asarray(t[EMBEDDING], np.float32) for t in tables])
    return Embeddings(path, ids, vectors, provenance)


def nearest_neighbours(vectors: np.ndarray, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` rows of ``vectors`` closest to each query by cosine: (indices, similarities), best first."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=min(n, len(vectors)), metric="cosine", algorithm="brute").fit(vectors)
    distances, indices = index.kneighbors(queries)
    return indices, 1 - distances


def similar_rows(embeddings: Embeddings, galaxy_id: str, n: int) -> pd.DataFrame:
    """The ``n`` galaxies most similar to ``galaxy_id`` (itself left out), with their cosine similarity."""
    query = embeddings.row(galaxy_id)
    indices, similarity = nearest_neighbours(embeddings.vectors, embeddings.vectors[[query]], n + 1)
    keep = indices[0] != query
    indices, similarity = indices[0][keep][:n], similarity[0][keep][:n]
    return pd.DataFrame({"rank": np.arange(1, len(indices) + 1), "id": embeddings.ids[indices],
                         "similarity": similarity.astype(np.float32)})


def anomaly_scores(vectors: np.ndarray, method: str = "isolation-forest", seed: int = 0) -> np.ndarray:
    """How unusual each galaxy is (higher: more unusual), by ``method`` (ANOMALY_METHODS)."""
    if method == "knn":
        _, similarity = nearest_neighbours(vectors, vectors, KNN_NEIGHBOURS + 1)
        return (1 - similarity[:, 1:]).mean(axis=1)  # the first neighbour is the galaxy itself
    if method == "isolation-forest":
        from sklearn.ensemble import IsolationForest
        from sklearn.preprocessing import StandardScaler

        scaled = StandardScaler().fit_transform(vectors)
        return -IsolationForest(n_estimators=200, random_state=seed).fit(scaled).score_samples(scaled)
    raise BadInputError("bad option", f"--method must be one of {', '.join(ANOMALY_METHODS)}, not {method!r}")


def anomaly_rows(embeddings: Embeddings, n: int, method: str, seed: int) -> pd.DataFrame:
    """The ``n`` most unusual galaxies, most unusual first, with their score."""
    scores = anomaly_scores(embeddings.vectors, method, seed)
    order = np.argsort(-scores, kind="stable")[:n]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "id": embeddings.ids[order],
                         "score": scores[order].astype(np.float32)})


def source_images(provenance: dict, ids: list[str]) -> dict[str, np.ndarray]:
    """The images of ``ids``, read back from the input the embeddings were made from (one streamed pass)."""
    from galzoo_tf.data.inputs import FolderSource, RecordSource
    from galzoo_tf.data.layout import ImageSpec

    described, wanted, found = provenance["input"], set(ids), {}
    if "records" in described:
        split = described.get("split")
        source = RecordSource(Path(described["records"]), None if split in (None, "all") else split)
    else:
        source = FolderSource(Path(described["images"]), ImageSpec.from_json(provenance["image"]), skip_bad=True)
    for batch in source.batches(256):
        found.update({gid: image for gid, image in zip(batch.ids, batch.images, strict=True) if gid in wanted})
        if len(found) == len(wanted):
            break
    return found


def _montage(embeddings: Embeddings, ranked: pd.DataFrame, value: str, out: Path, title: str,
             first: str | None = None) -> Path:
    from galzoo_tf.plots import montage

    ids = ([first] if first else []) + list(ranked["id"])
    images = source_images(embeddings.provenance, ids)
    shown = [gid for gid in ids if gid in images]
    values = dict(zip(ranked["id"], ranked[value], strict=True))
    captions = [f"query\n{gid[-22:]}" if gid == first else f"{value} {values[gid]:.3g}\n{gid[-22:]}"
                for gid in shown]
    return montage([images[gid] for gid in shown], captions, montage_path(out), columns=min(8, len(shown)),
                   title=title)


@dataclass(frozen=True)
class SearchResult:
    path: Path
    rows: pd.DataFrame
    montage: Path | None


def _write(out: Path, rows: pd.DataFrame, embeddings: Embeddings, settings: dict,
           picture: Callable[[], Path] | None) -> SearchResult:
    """The CSV (atomically, via pandas), its provenance JSON, and the montage unless ``picture`` is None."""
    with replaced_atomically(out, ".csv") as temporary:
        rows.to_csv(temporary, index=False)
    write_json_atomic(provenance_path(out), {"galzoo_version": __version__, **settings,
                                             "embeddings": {"path": str(embeddings.path.resolve()),
                                                            "sha256": embeddings.checksum(),
                                                            "galaxies": len(embeddings.ids)},
                                             "columns": list(rows.columns)})
    return SearchResult(out, rows, picture() if picture else None)


def similar(embeddings_path: Path, galaxy_id: str, out: Path, n: int = 16, show: bool = True) -> SearchResult:
    """`galzoo similar`: the galaxies whose embeddings are nearest ``galaxy_id``'s, as a CSV and a montage."""
    out = list_path(out, "the list", "--out ")
    with writing([Output.file(out, also=[montage_path(out), provenance_path(out)])],
                 [("embeddings", embeddings_path)]):
        embeddings = read_embeddings(embeddings_path)
        rows = similar_rows(embeddings, galaxy_id, n)
        picture = (lambda: _montage(embeddings, rows, "similarity", out, f"nearest {len(rows)} to {galaxy_id} "
                                    "(cosine similarity of embeddings)", first=galaxy_id)) if show else None
        return _write(out, rows, embeddings, {"query": galaxy_id, "n": n, "metric": "cosine"}, picture)


def anomalies(embeddings_path: Path, out: Path, n: int = 100, method: str = "isolation-forest", seed: int = 0,
              show: bool = True) -> SearchResult:
    """`galzoo anomalies`: the ``n`` most unusual galaxies of an embeddings file, as a CSV and a montage."""
    out = list_path(out, "the list", "--out ")
    with writing([Output.file(out, also=[montage_path(out), provenance_path(out)])],
                 [("embeddings", embeddings_path)]):
        embeddings = read_embeddings(embeddings_path)
        rows = anomaly_rows(embeddings, n, method, seed)
        picture = (lambda: _montage(embeddings, rows.head(24), "score", out,
                                    f"most unusual {min(24, len(rows))} by {method}")) if show else None
        return _write(out, rows, embeddings, {"n": n, "method": method, "seed": seed}, picture)
