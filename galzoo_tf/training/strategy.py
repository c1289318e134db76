"""tf.distribute strategies and numeric precision: where and in what dtype a run computes."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from galzoo_tf.errors import BadInputError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: several GPUs -> mirrored; a multi-worker TF_CONFIG -> multiworker; else the default strategy."""
    if name not in STRATEGIES:
        raise BadInputError("bad option", f"--strategy must be one of {', '.join(STRATEGIES)}")
    if name == "auto":
        workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
        name = "multiworker" if len(workers) > 1 else "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 \
            else "default"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief (worker 0) writes the model directory."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is None or resolver.task_type in (None, "chief") or \
        (resolver.task_type == "worker" and resolver.task_id == 0)


def set_precision(mixed: bool) -> None:
    """float16 on GPUs, bfloat16 on CPU, or float32; the output layer stays float32 either way."""
    gpu = bool(tf.config.list_logical_devices("GPU"))
    keras.mixed_precision.set_global_policy(("mixed_float16" if gpu else "mixed_bfloat16") if mixed else "float32")
