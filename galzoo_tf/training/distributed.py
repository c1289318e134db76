"""A training loop for tf.distribute strategies that Keras 3's ``fit`` cannot drive.

Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585: its
symbolic build reduces the first distributed batch eagerly). This loop does what ``fit``
does for galzoo, with ``strategy.run``: per-replica steps whose loss is the task's per-galaxy
loss averaged over the global batch plus the model's regularisation losses (``model.losses``,
e.g. GaMPEN's L2), as Keras's compiled loss is; gradients all-reduced by the strategy through
the Keras optimizer; the same Keras callbacks (early stopping, learning-rate reduction,
checkpoints, TensorBoard) called at the same points; and one epoch of the dataset per
``steps`` steps.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """Shard by element (batches are split between workers), not by file: every worker sees every epoch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def regularisation(model: keras.Model) -> tf.Tensor:
    """The sum of the model's regularisation losses (0 when it has none)."""
    return tf.add_n([tf.cast(loss, tf.float32) for loss in model.losses]) if model.losses else tf.constant(0.0)


def _steps(model: keras.Model, loss: keras.losses.Loss, strategy: tf.distribute.Strategy):
    """Compiled train and evaluation steps; each returns (sum of per-galaxy losses, galaxies, regularisation)."""

    def per_galaxy(images, targets, training: bool) -> tf.Tensor:
        return tf.cast(loss.call(targets, model(images, training=training)), tf.float32)

    def train_replica(images, targets):
        with tf.GradientTape() as tape:
            losses = per_galaxy(images, targets, True)
            penalty = regularisation(model)
            objective = tf.nn.compute_average_loss(losses) + tf.nn.scale_regularization_loss(penalty)
        gradients = tape.gradient(objective, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32), penalty

    def evaluate_replica(images, targets):
        losses = per_galaxy(images, targets, False)
        return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32), regularisation(model)

    def reduced(replica_fn):
        @tf.function
        def step(batch):
            total, count, penalty = strategy.run(replica_fn, args=batch)
            return (strategy.reduce("SUM", total, axis=None), strategy.reduce("SUM", count, axis=None),
                    strategy.reduce("MEAN", penalty, axis=None))

        return step

    return reduced(train_replica), reduced(evaluate_replica)


def batch_loss(total: tf.Tensor, count: tf.Tensor, penalty: tf.Tensor) -> float:
    """What Keras reports for a batch: the mean per-galaxy loss plus the regularisation."""
    return float(total) / max(float(count), 1.0) + float(penalty)


def fit_distributed(model: keras.Model, loss: keras.losses.Loss, strategy: tf.distribute.Strategy,
                    train_data: tf.data.Dataset, val_data: tf.data.Dataset, first_epoch: int, epochs: int, steps: int,
                    callbacks: list[keras.callbacks.Callback]) -> None:
    """Train from ``first_epoch`` to ``epochs`` with ``steps`` batches per epoch, calling the callbacks like fit.

    ``loss`` is the task's loss (its ``call`` gives per-galaxy values); the model's regularisation
    losses are added to it, so the objective and the reported loss are the compiled loss.
    """
    train_step, evaluate_step = _steps(model, loss, strategy)
    train_iterator = iter(_distribute(strategy, train_data))
    distributed_val = _distribute(strategy, val_data)
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(first_epoch, epochs):
        hooks.on_epoch_begin(epoch)
        total = count = penalties = 0.0
        for batch in range(steps):
            batch_total, batch_count, penalty = train_step(next(train_iterator))
            total, count = total + float(batch_total), count + float(batch_count)
            penalties += float(penalty) * float(batch_count)
            hooks.on_train_batch_end(batch, {"loss": batch_loss(batch_total, batch_count, penalty)})
            if model.stop_training:  # a callback gave up mid-epoch (NaN loss): no validation, no epoch end
                hooks.on_train_end()
                return
        val_total = val_count = 0.0
        for val_batch in distributed_val:  # the weights stay put, so every batch has the same penalty
            batch_total, batch_count, penalty = evaluate_step(val_batch)
            val_total, val_count = val_total + float(batch_total), val_count + float(batch_count)
        logs = {"loss": (total + penalties) / max(count, 1.0), "val_loss": batch_loss(val_total, val_count, penalty),
                "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end()
