"""Optimizers for fine-tuning: Adam with a smaller learning rate for the pretrained trunk than for the new heads."""

from __future__ import annotations

from collections.abc import Sequence

import keras


@keras.saving.register_keras_serializable(package="galzoo")
class TrunkScaledAdam(keras.optimizers.Adam):
    """Adam whose steps on every variable outside ``head_layers`` are scaled by ``trunk_factor``.

    Full fine-tuning moves a pretrained trunk gently while new heads learn at the full rate
    (as Zoobot fine-tunes with smaller rates below the head), so a few hundred labels adapt
    the representation without wiping it. The schedule and plateau reductions act on both.
    """

    def __init__(self, trunk_factor: float = 0.1, head_layers: Sequence[str] = ("logits",), **kwargs) -> None:
        super().__init__(**kwargs)
        self.trunk_factor, self.head_layers = float(trunk_factor), tuple(head_layers)
        self._head_keys: set = set()

    def build(self, var_list) -> None:
        """Note the heads' variables by key (the backend hands update_step its own variable objects)."""
        super().build(var_list)
        self._head_keys = {self._var_key(v) for v in var_list if v.path.split("/")[0] in self.head_layers}

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) not in self._head_keys:
            learning_rate = learning_rate * self.trunk_factor
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "trunk_factor": self.trunk_factor, "head_layers": list(self.head_layers)}
