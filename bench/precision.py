"""Benchmark CPU training speed settings: bfloat16 mixed precision vs float32, oneDNN on/off, image and batch size.

    python bench/precision.py --steps 20

Pretraining the base model is galzoo's biggest cost, so this measures what the CPU offers
(AVX-512 with BF16 here). Each setting trains the paper CNN (greyscale input, one
three-answer head, Adam, the Binomial vote loss) on one batch held in memory, so the
input pipeline is out of the picture (bench/train.py measures that), in its own Python
process, because oneDNN and the Keras precision policy are fixed when TensorFlow starts.
Images/s is timed over ``--steps`` steps after a warm-up epoch; ratios are to float32
with oneDNN on at the same image and batch size, measured in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from train import images_per_second  # noqa: E402  (bench/train.py: the same timing)


def one_setting(precision: str, image_size: int, batch_size: int, steps: int) -> float:
    """Training images/s of the paper CNN in ``precision`` on one random in-memory batch."""
    import keras
    import numpy as np
    import tensorflow as tf

    from galzoo_tf.models import build_vote_model
    from galzoo_tf.tasks.votes.loss import BinomialVoteLoss

    keras.mixed_precision.set_global_policy(precision)
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, image_size, image_size, 1), dtype=np.float32)
    totals = np.full((batch_size, 3), 40, np.float32)  # targets: the k of every output, then the N of every output
    counts = rng.multinomial(40, [0.5, 0.3, 0.2], size=batch_size).astype(np.float32)
    batch = tf.data.Dataset.from_tensors((images, np.concatenate([counts, totals], axis=1))).repeat()
    model = build_vote_model((image_size, image_size, 1), 3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=BinomialVoteLoss())
    return images_per_second(model, batch, steps, batch_size)


def run_setting(precision: str, onednn: bool, image_size: int, batch_size: int, steps: int) -> float:
    """``one_setting`` in a fresh process with oneDNN switched on or off."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, __file__, "--one", json.dumps([precision, image_size, batch_size, steps])]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per setting")
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(one_setting(*json.loads(args.one)))
        return
    print(f"paper CNN training, greyscale, in-memory batch; {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.processor() or 'cpu'}; {args.steps} steps after a warm-up epoch")
    print(f"{'size':>5} {'batch':>6} {'precision':>15} {'oneDNN':>7} {'images/s':>9} {'ratio':>6}")
    for size, batch in itertools.product(args.image_sizes, args.batch_sizes):
        reference = None
        for precision, onednn in [("float32", True), ("float32", False), ("mixed_bfloat16", True)]:
            rate = run_setting(precision, onednn, size, batch, args.steps)
            reference = reference or rate
            print(f"{size:>5} {batch:>6} {precision:>15} {'on' if onednn else 'off':>7} {rate:9.1f} "
                  f"{rate / reference:6.2f}", flush=True)


if __name__ == "__main__":
    main()
