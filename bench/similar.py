"""How long `galzoo similar` and `galzoo anomalies` take on a survey-sized embeddings table.

    python bench/similar.py --rows 1000000 --width 128

Random float32 embeddings (the search cost does not depend on what the vectors hold), timed
with the functions the commands call: one exact cosine query (scikit-learn brute force), the
isolation-forest anomaly score of every row, and the kNN anomaly score (all pairs, so on
the first --knn-rows rows only). Prints one JSON line; docs/representation.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from galzoo_tf.representation.search import anomaly_scores, nearest_neighbours


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--knn-rows", type=int, default=20_000, help="rows for the kNN anomaly score")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    vectors = np.random.default_rng(args.seed).normal(size=(args.rows, args.width)).astype(np.float32)
    query_seconds = [timed(lambda i=i: nearest_neighbours(vectors, vectors[i:i + 1], 17)) for i in range(args.queries)]
    forest_seconds = timed(lambda: anomaly_scores(vectors, "isolation-forest", args.seed))
    knn_rows = min(args.rows, args.knn_rows)  # all-pairs: quadratic in the rows
    knn_seconds = timed(lambda: anomaly_scores(vectors[:knn_rows], "knn"))
    print(json.dumps({"rows": args.rows, "width": args.width, "machine": platform.processor() or platform.machine(),
                      "similar_seconds_per_query": {"median": float(np.median(query_seconds)),
                                                    "max": float(np.max(query_seconds))},
                      "anomalies_isolation_forest_seconds": forest_seconds,
                      "anomalies_knn": {"rows": knn_rows, "seconds": knn_seconds}}))


if __name__ == "__main__":
    main()
