"""`galzoo train`: it learns, resumes after a kill, masks unasked questions, saves safely, fails clearly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from galzoo_tf.data.prepare import PrepareOptions, write_records
from galzoo_tf.data.sources.synthetic import load_synthetic
from galzoo_tf.errors import BadInputError
from galzoo_tf.models import MCDropout, build_vote_model
from galzoo_tf.schema import load_schema
from galzoo_tf.training.loop import TrainConfig, TrainingError, train

GALZOO = str(Path(sys.executable).with_name("galzoo"))
SMALL = {"image_size": 32, "batch_size": 32}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "synthetic"
    write_records(load_synthetic(800, seed=1), out, PrepareOptions(test_size=0.1, val_fraction=0.2, seed=1),
                  workers=2)
    return out


def test_bar_model_beats_the_mean_rho_baseline(synthetic, tmp_path):
    result = train(synthetic, tmp_path / "bar", TrainConfig(question="bar", epochs=6, image_size=48, batch_size=32),
                   verbose=0)
    assert result.best_val_loss < result.baseline_val_loss - 0.02
    sidecar = json.loads((tmp_path / "bar" / "galzoo.json").read_text())
    assert sidecar["question"] == "bar" and sidecar["augmentation"]["central_crop"] is True
    assert sidecar["augmentation"]["zoom"] == [1.7, 1.9] and sidecar["config"]["seed"] == 0
    assert len(sidecar["history"]["val_loss"]) == 6 and sidecar["data"]["shards"]
    model = keras.saving.load_model(tmp_path / "bar" / "model.keras", safe_mode=True)
    assert any(isinstance(layer, MCDropout) for layer in model.layers)


def test_mixed_precision_keeps_logits_and_loss_in_float32(synthetic, tmp_path):
    try:
        result = train(synthetic, tmp_path / "mixed", TrainConfig(question="smooth", epochs=1, mixed_precision=True,
                                                                  **SMALL), verbose=0)
        model = keras.saving.load_model(tmp_path / "mixed" / "model.keras", safe_mode=True)
        assert model.get_layer("logits").compute_dtype == "float32"
        assert model.layers[1].compute_dtype == "bfloat16"  # CPU: bfloat16; GPU: float16
        assert np.isfinite(result.best_val_loss)
        # the posterior sampler of predict and acquire runs the reduced-precision model, float32 out
        from galzoo_tf.tasks.registry import load_model

        logits = load_model(tmp_path / "mixed", "votes").sampler(4, True, 0).logits(
            np.full((2, 256, 256, 3), 90, np.uint8), np.arange(2))
        assert logits.dtype.name == "float32" and logits.shape[:2] == (2, 4) and np.isfinite(logits.numpy()).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_save_and_load_round_trip_in_safe_mode(tmp_path):
    model = build_vote_model((32, 32, 1), 3, dropout=0.3)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    batch = np.random.default_rng(0).normal(size=(4, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded(batch, training=False), model(batch, training=False), rtol=1e-6)
    dropout = next(layer for layer in loaded.layers if isinstance(layer, MCDropout))
    assert dropout.name == "mc_dropout" and dropout.rate == pytest.approx(0.3)
    np.testing.assert_array_equal(dropout.seed_generator.state.numpy(), model.get_layer("mc_dropout")
                                  .seed_generator.state.numpy())


def test_question_all_trains_one_head_per_question(synthetic, tmp_path):
    result = train(synthetic, tmp_path / "all", TrainConfig(question="all", epochs=1, **SMALL), verbose=0)
    assert np.isfinite(result.best_val_loss) and result.best_val_loss < result.baseline_val_loss * 3
    sidecar = json.loads((tmp_path / "all" / "galzoo.json").read_text())
    assert [h["question"] for h in sidecar["heads"]][:3] == ["smooth", "edgeon", "bar"]
    model = keras.saving.load_model(tmp_path / "all" / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 33)


def test_leave_out_trains_no_head_for_those_questions_and_still_filters_on_the_root(synthetic, tmp_path):
    config = TrainConfig(question="all", epochs=1, leave_out=("smooth", "bar"), **SMALL)
    result = train(synthetic, tmp_path / "trunk", config, verbose=0)
    sidecar = json.loads((tmp_path / "trunk" / "galzoo.json").read_text())
    questions = [h["question"] for h in sidecar["heads"]]
    assert "bar" not in questions and "smooth" not in questions and questions[:2] == ["edgeon", "spiral"]
    assert sidecar["config"]["leave_out"] == ["smooth", "bar"]
    whole = train(synthetic, tmp_path / "all", TrainConfig(question="all", epochs=1, **SMALL), verbose=0)
    assert (result.train_galaxies, result.val_galaxies) == (whole.train_galaxies, whole.val_galaxies)
    model = keras.saving.load_model(tmp_path / "trunk" / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 33 - 3 - 1)  # smooth has three outputs, bar (yes/no) one


@pytest.mark.parametrize(("question", "leave_out", "message"), [
    ("bar", ("smooth",), "applies with --question all"), ("all", ("bars",), "bars"),
    ("all", load_schema("gz2").question_names, "every question")])
def test_a_bad_leave_out_is_one_clear_error(synthetic, tmp_path, question, leave_out, message):
    with pytest.raises(BadInputError, match=message):
        train(synthetic, tmp_path / "m", TrainConfig(question=question, epochs=1, leave_out=leave_out, **SMALL),
              verbose=0)


def run_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([GALZOO, "train", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def test_resume_after_a_killed_run_ends_like_an_uninterrupted_run(synthetic, tmp_path):
    args = ["--data", str(synthetic), "--question", "smooth", "--epochs", "3", "--image-size", "32",
            "--batch-size", "32", "--patience", "9"]
    whole = run_cli(*args, "--out", str(tmp_path / "whole"))
    killed = run_cli(*args, "--out", str(tmp_path / "killed"))
    state = tmp_path / "killed" / "train-state.json"
    deadline = time.time() + 240
    while time.time() < deadline and not (state.is_file() and json.loads(state.read_text())["epoch"] >= 1):
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert json.loads(state.read_text())["epoch"] < 3 and not (tmp_path / "killed" / "galzoo.json").exists()
    assert whole.wait(timeout=300) == 0, whole.stdout.read()
    refused = run_cli(*args, "--out", str(tmp_path / "killed"))
    assert refused.wait(timeout=120) == 2 and "--resume" in refused.stdout.read()
    resumed = run_cli(*args, "--out", str(tmp_path / "killed"), "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    a = keras.saving.load_model(tmp_path / "whole" / "checkpoint.keras", safe_mode=True)
    b = keras.saving.load_model(tmp_path / "killed" / "checkpoint.keras", safe_mode=True)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    history = [json.loads((tmp_path / d / "galzoo.json").read_text())["history"]["val_loss"]
               for d in ("whole", "killed")]
    np.testing.assert_allclose(history[0], history[1], rtol=1e-5)


def test_resume_of_a_run_killed_after_its_last_epoch_only_finishes_it(synthetic, tmp_path):
    config = TrainConfig(question="smooth", epochs=1, **SMALL)
    first = train(synthetic, tmp_path / "done", config, verbose=0)
    for name in ("galzoo.json", "model.keras"):  # as if killed between the last checkpoint and _finish
        (tmp_path / "done" / name).unlink()
    resumed = train(synthetic, tmp_path / "done", config, resume=True, verbose=0)
    assert resumed.history == first.history and (tmp_path / "done" / "model.keras").is_file()
    assert json.loads((tmp_path / "done" / "galzoo.json").read_text())["best_val_loss"] == first.best_val_loss


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_worker_multiworker_run_on_localhost(synthetic, tmp_path):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    runs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        runs.append(run_cli("--data", str(synthetic), "--question", "smooth", "--epochs", "4", "--image-size", "32",
                            "--batch-size", "32", "--out", str(tmp_path / f"w{index}"), env={"TF_CONFIG": tf_config}))
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    sidecar = json.loads((tmp_path / "w0" / "galzoo.json").read_text())  # the chief writes the model
    assert len(sidecar["history"]["val_loss"]) == 4 and sidecar["best_val_loss"] < sidecar["baseline"]["val_loss"]
    assert not (tmp_path / "w1" / "model.keras").exists()
    assert "trained smooth model" in outputs[1]  # the other worker trained alongside and finished too


def test_nan_loss_stops_with_a_reason_and_keeps_nothing_broken(synthetic, tmp_path):
    with pytest.raises(TrainingError, match="NaN in epoch 1"):
        train(synthetic, tmp_path / "nan", TrainConfig(question="smooth", epochs=2, learning_rate=1e12, **SMALL),
              verbose=0)
    assert not (tmp_path / "nan" / "model.keras").exists() and not (tmp_path / "nan" / "checkpoint.keras").exists()


def test_bad_requests_are_clear(synthetic, tmp_path):
    with pytest.raises(BadInputError, match="no train galaxy has at least 500 votes"):
        train(synthetic, tmp_path / "a", TrainConfig(question="bar", min_votes=500, **SMALL), verbose=0)
    with pytest.raises(BadInputError, match="no question 'barred'"):
        train(synthetic, tmp_path / "b", TrainConfig(question="barred", **SMALL), verbose=0)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train-config.json").write_text(json.dumps({"question": "smooth"}))
    with pytest.raises(TrainingError, match="holds a model for question 'smooth'"):
        train(synthetic, tmp_path / "c", TrainConfig(question="bar", **SMALL), verbose=0)
    no_val = tmp_path / "no_val"
    write_records(load_synthetic(30, seed=2), no_val, PrepareOptions(test_size=3, val_fraction=0, seed=2), workers=0)
    with pytest.raises(BadInputError, match="the val split is empty"):
        train(no_val, tmp_path / "d", TrainConfig(question="smooth", **SMALL), verbose=0)


def test_mirrored_strategy_runs_on_cpu(synthetic, tmp_path):
    result = train(synthetic, tmp_path / "run", TrainConfig(question="smooth", epochs=1, strategy="mirrored", **SMALL),
                   verbose=0)
    assert np.isfinite(result.best_val_loss) and (tmp_path / "run" / "model.keras").is_file()


def test_jit_really_compiles_with_xla(synthetic, tmp_path):
    run = run_cli("--data", str(synthetic), "--question", "smooth", "--epochs", "1", "--image-size", "32",
                  "--batch-size", "32", "--jit", "--out", str(tmp_path / "xla"))
    output = run.communicate(timeout=300)[0]
    assert run.returncode == 0, output
    assert "jit_compile=False" not in output  # Keras falls back silently-ish when determinism is on
    assert json.loads((tmp_path / "xla" / "galzoo.json").read_text())["config"]["jit"] is True


DISTRIBUTED_PARAMETER_LOSS = """
import json
import keras, numpy as np, tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first: before any other TensorFlow work
from galzoo_tf.models.gampen import build_gampen_model
from galzoo_tf.tasks.parameters.loss import ParameterLoss
from galzoo_tf.training.distributed import fit_distributed

keras.utils.set_random_seed(0)
with strategy.scope():
    model = build_gampen_model((32, 32, 1), dropout=0.0, width=0.125, l2=0.01)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=ParameterLoss())  # rate 0: weights stay put
rng = np.random.default_rng(0)
images = rng.normal(size=(16, 32, 32, 1)).astype("float32")
targets = rng.normal(size=(16, 3)).astype("float32")
compiled = float(model.compute_loss(x=images, y=targets, y_pred=model(images)))
likelihood = float(np.mean(ParameterLoss().call(targets, model(images))))
seen = []

class Seen(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        seen.append(logs["loss"])

    def on_epoch_end(self, epoch, logs=None):
        seen.extend([logs["loss"], logs["val_loss"]])

data = tf.data.Dataset.from_tensor_slices((images, targets)).batch(16)
fit_distributed(model, ParameterLoss(), strategy, data.repeat(), data, 0, 1, 1, [Seen()])
print(json.dumps({"compiled": compiled, "likelihood": likelihood, "seen": seen}))
"""


def test_multiworker_loop_trains_parameters_on_their_own_loss_with_l2():
    """The distributed loop reports GaMPEN's compiled loss (MVN likelihood + L2), not the vote likelihood."""
    run = subprocess.run([sys.executable, "-c", DISTRIBUTED_PARAMETER_LOSS], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["compiled"] - result["likelihood"] > 1e-3  # the L2 term is really there
    assert result["seen"] == pytest.approx([result["compiled"]] * 3, rel=1e-5)  # batch, epoch and val loss
