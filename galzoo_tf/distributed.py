"""A training loop for tf.distribute strategies that Keras 3's ``fit`` cannot drive.

Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585: its
symbolic build reduces the first distributed batch eagerly). This loop does what ``fit``
does for galzoo, with ``strategy.run``: per-replica steps whose loss is averaged over the
global batch, gradients all-reduced by the strategy through the Keras optimizer, the same
Keras callbacks (early stopping, learning-rate reduction, checkpoints, TensorBoard) called
at the same points, and one epoch of the dataset per ``steps`` steps.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from galzoo_tf.heads import negative_log_likelihood


def _distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """Shard by element (batches are split between workers), not by file: every worker sees every epoch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _steps(model: keras.Model, strategy: tf.distribute.Strategy):
    """Compiled train and evaluation steps; each returns (sum of per-galaxy losses, galaxies) over replicas."""

    def train_replica(images, targets):
        with tf.GradientTape() as tape:
            losses = negative_log_likelihood(targets, model(images, training=True))
            loss = tf.nn.compute_average_loss(losses)  # divides by the global batch size
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32)

    def evaluate_replica(images, targets):
        losses = negative_log_likelihood(targets, model(images, training=False))
        return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32)

    def reduced(replica_fn):
        @tf.function
        def step(batch):
            total, count = strategy.run(replica_fn, args=batch)
            return strategy.reduce("SUM", total, axis=None), strategy.reduce("SUM", count, axis=None)

        return step

    return reduced(train_replica), reduced(evaluate_replica)


def fit_distributed(model: keras.Model, strategy: tf.distribute.Strategy, train_data: tf.data.Dataset,
                    val_data: tf.data.Dataset, first_epoch: int, epochs: int, steps: int,
                    callbacks: list[keras.callbacks.Callback]) -> None:
    """Train from ``first_epoch`` to ``epochs`` with ``steps`` batches per epoch, calling the callbacks like fit."""
    train_step, evaluate_step = _steps(model, strategy)
    train_iterator = iter(_distribute(strategy, train_data))
    distributed_val = _distribute(strategy, val_data)
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(first_epoch, epochs):
        hooks.on_epoch_begin(epoch)
        total = count = 0.0
        for batch in range(steps):
            batch_total, batch_count = train_step(next(train_iterator))
            total, count = total + float(batch_total), count + float(batch_count)
            hooks.on_train_batch_end(batch, {"loss": float(batch_total) / max(float(batch_count), 1.0)})
            if model.stop_training:  # a callback gave up mid-epoch (NaN loss): no validation, no epoch end
                hooks.on_train_end()
                return
        val_total = val_count = 0.0
        for val_batch in distributed_val:
            batch_total, batch_count = evaluate_step(val_batch)
            val_total, val_count = val_total + float(batch_total), val_count + float(batch_count)
        logs = {"loss": total / max(count, 1.0), "val_loss": val_total / max(val_count, 1.0),
                "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end()
