"""Benchmark posterior sampling: T passes with test-time augmentation vs --no-tta (trunk once), and the sampler alone.

    python bench/predict.py --model data/demo/bar-model --data data/demo/synthetic --galaxies 256

One run measures galaxies/s of the sampler on batches already in memory with TTA (G x T
augmented images through the whole model) and without (the trunk once per galaxy, the
dropout and output layers T times), their ratio (about T when the trunk dominates), and
galaxies/s of the whole `predict` (records read, samples, posterior of k, catalogue rows
written) with TTA, against the sampler alone: the share of time not spent sampling.
A warm-up batch (tracing) is excluded from the sampler timings, not from the whole run's.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def sampler_rate(sampler, batches: list) -> float:
    """Galaxies/s of ``sampler.logits`` over ``batches`` (images, indices), after one warm-up batch."""
    images, indices = batches[0]
    sampler.logits(images, indices).numpy()
    start = time.perf_counter()
    for images, indices in batches:
        sampler.logits(images, indices).numpy()
    return sum(len(i) for _, i in batches) / (time.perf_counter() - start)


def measure(model_dir: Path, data: Path, galaxies: int = 256, passes: int = 30, batch_size: int = 32) -> dict:
    """Galaxies/s of the sampler with and without TTA on batches in memory, and of the whole predict (TTA)."""
    from galzoo_tf.catalogues.predict import predict
    from galzoo_tf.data.inputs import RecordSource
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.tasks.votes.catalogue import PredictOptions

    model = load_model(model_dir, "votes")
    batches = []
    for batch in RecordSource(data, split="test").batches(batch_size):
        batches.append((batch.images, batch.indices))
        if sum(len(i) for _, i in batches) >= galaxies:
            break
    tta = sampler_rate(model.sampler(passes, True, 0), batches)
    no_tta = sampler_rate(model.sampler(passes, False, 0), batches)
    with tempfile.TemporaryDirectory() as folder:
        options = PredictOptions(passes=passes, batch_size=batch_size)
        whole = predict([model], RecordSource(data, split="test"), Path(folder) / "cat.fits", options)
    return {"galaxies": sum(len(i) for _, i in batches), "tta": tta, "no_tta": no_tta,
            "whole": whole.galaxies_per_second, "whole_rows": whole.rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("data/demo/bar-model"))
    parser.add_argument("--data", type=Path, default=Path("data/demo/synthetic"))
    parser.add_argument("--galaxies", type=int, default=256, help="timed galaxies per measurement")
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    result = measure(args.model, args.data, args.galaxies, args.passes, args.batch_size)
    tta, no_tta = result["tta"], result["no_tta"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"model {args.model}, T = {args.passes}, batch {args.batch_size}, {result['galaxies']} galaxies timed")
    print(f"sampler with TTA:    {tta:8.1f} galaxies/s ({tta * args.passes:.0f} forward passes/s)")
    print(f"sampler --no-tta:    {no_tta:8.1f} galaxies/s")
    print(f"no-TTA / TTA:        {no_tta / tta:8.1f}x")
    print(f"whole predict (TTA): {result['whole']:8.1f} galaxies/s on {result['whole_rows']} test galaxies, "
          f"tracing included; whole / sampler = {result['whole'] / tta:.2f}")


if __name__ == "__main__":
    main()
