"""Layers shared by galzoo's models."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="galzoo")
class MCDropout(keras.layers.Dropout):
    """The dropout layer MC dropout samples through; its random state is saved with the model.

    Training uses it as a plain Dropout. At prediction ``galzoo_tf.tasks.votes.posterior.Sampler`` splits
    the model at this layer (found by its name, ``mc_dropout``) and draws its own masks, keyed
    per galaxy and pass, so batch normalisation elsewhere stays in inference mode. Saving the
    seed state makes a resumed training run draw the same masks as an uninterrupted one
    (Keras does not save a Dropout's seed state).
    """

    STATE_KEY = "seed_generator_state"

    def save_own_variables(self, store) -> None:
        store[self.STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store) -> None:
        if self.STATE_KEY in store:
            self.seed_generator.state.assign(store[self.STATE_KEY])
