"""BALD scoring speed and memory: galzoo's ``mutual_information`` against a reference written the way the 2019 code
scores (issue 20, point 7).

The reference follows the shape of Walmsley et al.'s acquisition code (zoobot/active_learning in
mwalmsley/galaxy-zoo-bayesian-cnn): for every galaxy and every MC sample, the Binomial pmf over k = 0..N from
scipy, an entropy summed in Python over the k values, the mean pmf's entropy per galaxy. It is our own code,
written to that shape to time it; both see identical samples and must agree to 1e-9.

    python bench/scoring.py [--reference-galaxies 300] [--galaxies 100000] [--passes 30] [--votes 40]

Prints one table and writes data/bench/scoring.json. Times are of untraced calls; galzoo's peak memory is
Python's traced allocations (numpy arrays included) during a second call on the whole pool.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import stats

from galzoo_tf.active.scores import mutual_information


def reference_entropy(probabilities: np.ndarray) -> float:
    """Entropy of one pmf, summed term by term in Python (as the 2019 code's map over p)."""
    return float(sum(-p * np.log(p + 1e-12) for p in probabilities))


def reference_mutual_information(rho: np.ndarray, votes: int) -> np.ndarray:
    """Per galaxy: entropy of the mean of its samples' Binomial pmfs minus the mean of their entropies."""
    k = np.arange(votes + 1)
    scores = []
    for galaxy in rho:
        pmfs = [stats.binom.pmf(k, votes, sample) for sample in galaxy]
        predictive = reference_entropy(np.mean(np.stack(pmfs), axis=0))
        expected = np.mean([reference_entropy(pmf) for pmf in pmfs])
        scores.append(predictive - expected)
    return np.asarray(scores)


def timed(function, *args) -> tuple[np.ndarray, float]:
    """(result, seconds) of one call, untraced (tracing slows Python loops far more than numpy)."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def peak_bytes(function, *args) -> int:
    """Peak traced allocations (numpy arrays included) during a second, traced call."""
    tracemalloc.start()
    function(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-galaxies", type=int, default=300)
    parser.add_argument("--galaxies", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--votes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("data/bench/scoring.json"))
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    rho = rng.beta(2, 5, size=(args.galaxies, args.passes))
    small = rho[:args.reference_galaxies]
    reference, reference_seconds = timed(reference_mutual_information, small, args.votes)
    ours_small, small_seconds = timed(mutual_information, small, args.votes)
    np.testing.assert_allclose(ours_small, reference, rtol=0, atol=1e-9)
    _, seconds = timed(mutual_information, rho, args.votes)
    peak = peak_bytes(mutual_information, rho, args.votes)
    rows = {
        "reference (2019 shape)": {"galaxies": len(small), "seconds": reference_seconds,
                                   "galaxies_per_s": len(small) / reference_seconds},
        "galzoo, same galaxies": {"galaxies": len(small), "seconds": small_seconds,
                                  "galaxies_per_s": len(small) / small_seconds},
        "galzoo, whole pool": {"galaxies": len(rho), "seconds": seconds, "galaxies_per_s": len(rho) / seconds,
                               "peak_mb": peak / 1e6},
    }
    speedup = rows["galzoo, whole pool"]["galaxies_per_s"] / rows["reference (2019 shape)"]["galaxies_per_s"]
    report = {"passes": args.passes, "votes": args.votes, "seed": args.seed, "machine": platform.processor() or
              platform.machine(), "max_abs_difference": float(np.abs(ours_small - reference).max()),
              "speedup_per_galaxy": speedup, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"T = {args.passes}, N = {args.votes}; agree to {report['max_abs_difference']:.1e}")
    print(f"{'':26} {'galaxies':>9} {'seconds':>9} {'galaxies/s':>12} {'peak MB':>8}")
    for name, row in rows.items():
        print(f"{name:26} {row['galaxies']:>9,} {row['seconds']:>9.2f} {row['galaxies_per_s']:>12,.0f} "
              f"{row.get('peak_mb', float('nan')):>8.1f}")
    print(f"galzoo per galaxy: {speedup:,.0f}x the reference")


if __name__ == "__main__":
    main()
