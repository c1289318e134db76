"""Benchmark training throughput: records + augmentation vs in-memory tensors, FLOPs, and the machine's matmul.

    python bench/train.py --data data/demo/synthetic --steps 30

One run measures: images/s training the paper CNN (128x128 greyscale, batch 64) from the
TFRecord pipeline with augmentation, the same model fed one constant batch held in
memory (the pipeline-free ceiling), their ratio (target >= 0.9: the pipeline is not the
bottleneck), the model's FLOPs per image (conv and dense layers, training = 3 x forward),
the achieved GFLOP/s, and a float32 matmul's GFLOP/s on the same machine for reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path


def forward_flops(model) -> int:
    """Multiply-adds x 2 of the conv and dense layers of one image's forward pass."""
    import keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            flops += 2 * height * width * kernel_h * kernel_w * layer.input.shape[-1] * channels_out
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return int(flops)


def images_per_second(model, dataset, steps: int, batch_size: int) -> float:
    """Training throughput over ``steps`` steps in epoch 2, after an epoch of warm-up (tracing, buffers)."""
    timer = EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=2, verbose=0, callbacks=[timer])
    return steps * batch_size / timer.seconds


class EpochTimer:
    """Keras callback timing the last epoch only (its methods are looked up by name)."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds = time.perf_counter() - self.start

        return Timer()


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    tf.matmul(a, a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = tf.matmul(a, a)
    result.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def measure(data: Path, steps: int = 30, batch_size: int = 64, image_size: int = 128,
            question_name: str = "smooth", mixed_precision: bool = False) -> dict:
    """Training images/s from records with augmentation and from one in-memory batch, FLOPs, matmul GFLOP/s."""
    import keras
    import tensorflow as tf

    from galzoo_tf.data.augment import AugmentConfig
    from galzoo_tf.models import build_vote_model
    from galzoo_tf.schema import load_schema
    from galzoo_tf.tasks.votes.heads import heads_for
    from galzoo_tf.tasks.votes.loss import BinomialVoteLoss
    from galzoo_tf.tasks.votes.targets import vote_dataset

    schema = load_schema("gz2")
    question = schema.question(question_name)
    heads = heads_for(schema, [question.name])
    config = AugmentConfig(image_size, True, question.zoom, question.central_crop)
    records = vote_dataset(data, "train", heads, config, batch_size, seed=0, epochs=(0, 100)).repeat()
    in_memory = tf.data.Dataset.from_tensors(next(iter(records))).repeat()
    keras.config.set_dtype_policy("mixed_bfloat16" if mixed_precision else "float32")
    model = build_vote_model((image_size, image_size, 1), heads[0].size)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=BinomialVoteLoss())
    return {"records": images_per_second(model, records, steps, batch_size),
            "in_memory": images_per_second(model, in_memory, steps, batch_size),
            "training_flops": 3 * forward_flops(model), "matmul_gflops": matmul_gflops(), "tf": tf.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo/synthetic"), help="prepared records")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--question", default="smooth", help="whose zoom and crop to use (bar: 1.7-1.9, central)")
    parser.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute, as train --mixed-precision")
    args = parser.parse_args()
    result = measure(args.data, args.steps, args.batch_size, args.image_size, args.question, args.mixed_precision)
    pipeline_rate, memory_rate, training_flops = result["records"], result["in_memory"], result["training_flops"]
    print(f"train throughput, {args.question} augmentation, paper CNN {args.image_size}x{args.image_size}x1, "
          f"batch {args.batch_size}, {'mixed bfloat16' if args.mixed_precision else 'float32'}; "
          f"{platform.machine()}, {os.cpu_count()} cores, TF {result['tf']}, no XLA")
    print(f"{'from records + augmentation':<34} {pipeline_rate:8.1f} images/s")
    print(f"{'in-memory constant batch':<34} {memory_rate:8.1f} images/s")
    print(f"{'ratio (target >= 0.9)':<34} {pipeline_rate / memory_rate:8.2f}")
    print(f"{'training FLOPs per image':<34} {training_flops / 1e9:8.3f} GFLOP")
    print(f"{'achieved (records)':<34} {pipeline_rate * training_flops / 1e9:8.1f} GFLOP/s")
    print(f"{'float32 matmul 2048^2':<34} {result['matmul_gflops']:8.1f} GFLOP/s")


if __name__ == "__main__":
    main()
