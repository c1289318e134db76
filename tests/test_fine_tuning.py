"""Fine-tuning vote models (`train --init-from`): the trunk is copied, the heads are new, --freeze trunk holds it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from galzoo_tf.errors import BadInputError
from galzoo_tf.training.loop import TrainConfig, train


def trunk_weights(model) -> dict[int, list[np.ndarray]]:
    """The weights of every weighted layer but the logits, by position (Keras names unnamed layers per process)."""
    return dict(enumerate(layer.get_weights() for layer in model.layers if layer.weights and layer.name != "logits"))


def test_freeze_trunk_trains_a_new_head_and_keeps_the_trunk_of_the_source(tiny_bar, tmp_path: Path):
    from galzoo_tf.tasks.registry import load_model

    records, source = tiny_bar
    out = tmp_path / "smooth"
    config = TrainConfig(question="smooth", epochs=1, image_size=32, batch_size=32, init_from=str(source),
                         freeze=("trunk",))
    train(records, out, config, verbose=0)
    before, after = load_model(source).model, load_model(out).model
    assert trunk_weights(after).keys() == trunk_weights(before).keys()
    for name, weights in trunk_weights(before).items():
        assert all(np.array_equal(a, b) for a, b in zip(weights, trunk_weights(after)[name], strict=True)), name
    assert after.get_layer("logits").kernel.shape[-1] == 3  # smooth's three answers, not bar's two
    sidecar = json.loads((out / "galzoo.json").read_text())
    assert sidecar["init_from"]["path"] == str(source.resolve()) and sidecar["init_from"]["freeze"] == ["trunk"]


def test_full_fine_tuning_moves_the_trunk(tiny_bar, tmp_path: Path):
    from galzoo_tf.tasks.registry import load_model

    records, source = tiny_bar
    train(records, tmp_path / "bar", TrainConfig(question="bar", epochs=1, image_size=32, batch_size=32,
                                                 init_from=str(source)), verbose=0)
    before, after = trunk_weights(load_model(source).model), trunk_weights(load_model(tmp_path / "bar").model)
    assert any(not np.array_equal(a, b) for name in before for a, b in zip(before[name], after[name], strict=True))


@pytest.mark.parametrize(("options", "message"), [
    ({"image_size": 48}, "use its --image-size"),
    ({"freeze": ("stn",)}, "cannot freeze stn of a vote model"),
])
def test_a_mismatched_source_or_option_is_one_clear_error(tiny_bar, tmp_path: Path, options, message):
    records, source = tiny_bar
    config = TrainConfig(**{"question": "bar", "epochs": 1, "image_size": 32, "init_from": str(source), **options})
    with pytest.raises(BadInputError, match=message):
        train(records, tmp_path / "out", config, verbose=0)


def test_freeze_without_a_model_to_fine_tune_is_an_error(tiny_bar, tmp_path: Path):
    with pytest.raises(BadInputError, match="--freeze applies with --init-from"):
        train(tiny_bar[0], tmp_path / "out", TrainConfig(question="bar", image_size=32, freeze=("trunk",)), verbose=0)
