"""Layers shared by galzoo's models."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="galzoo")
class MCDropout(keras.layers.Dropout):
    """Dropout that can be switched on at inference on its own, for MC dropout sampling.

    Setting ``sampling = True`` keeps this layer dropping units when the model runs with
    ``training=False``, so batch normalisation elsewhere stays in inference mode (calling
    the whole model with ``training=True`` would corrupt every sample). Its random state
    is saved with the model, so a resumed training run draws the same masks as an
    uninterrupted one (Keras does not save a Dropout's seed state).
    """

    STATE_KEY = "seed_generator_state"

    def __init__(self, rate: float, **kwargs) -> None:
        super().__init__(rate, **kwargs)
        self.sampling = False

    def call(self, inputs, training=None):
        return super().call(inputs, training=True if self.sampling else training)

    def save_own_variables(self, store) -> None:
        store[self.STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store) -> None:
        if self.STATE_KEY in store:
            self.seed_generator.state.assign(store[self.STATE_KEY])
