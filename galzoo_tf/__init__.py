"""galzoo: calibrated probabilistic galaxy morphology and active learning.

The Python API for notebooks (each name loads its module, and TensorFlow, on first use, so
``import galzoo_tf`` stays instant)::

    import galzoo_tf as gz

    catalogue = gz.load_synthetic(2000, seed=0)                     # or load_gz2 / load_folder
    gz.write_records(catalogue, "data/synthetic", gz.PrepareOptions(test_size=0.125, seed=0))
    gz.train("data/synthetic", "data/bar-model", gz.TrainConfig(question="bar", epochs=12))
    report = gz.calibrate_model("data/bar-model", "data/synthetic", "data/calibration",
                                gz.CalibrateRequest(tune_dropout=(0.5, 0.7, 0.9)))
    model = gz.load_model("data/bar-model")
    gz.predict([model], gz.RecordSource("data/synthetic", "test"), "bar-test.fits",
               gz.task_of([model]).predict_options(gz.PredictRequest(passes=30), [model]))
    gz.acquire(model, gz.RecordSource("data/pool"), "next.csv", gz.AcquireOptions(n=128))

Each command's whole run is one call too: ``prepare_synthetic``/``prepare_gz2``/
``prepare_folder``/``prepare_fits``, ``train``, ``calibrate_model``, ``predict_catalogue``,
``acquire_pool``, ``run_campaign`` and ``population_fraction``.

Once ``galzoo_tf`` is imported, ``keras.saving.load_model("model.keras", safe_mode=True)``
also works: galzoo's layers and losses register themselves when Keras is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

API = {  # name -> module that defines it
    "PrepareOptions": "galzoo_tf.data.prepare", "write_records": "galzoo_tf.data.prepare",
    "prepare_synthetic": "galzoo_tf.data.prepare", "prepare_gz2": "galzoo_tf.data.prepare",
    "prepare_folder": "galzoo_tf.data.prepare", "prepare_fits": "galzoo_tf.data.prepare",
    "load_synthetic": "galzoo_tf.data.sources.synthetic", "load_gz2": "galzoo_tf.data.sources.gz2",
    "load_folder": "galzoo_tf.data.sources.folder",
    "RecordSource": "galzoo_tf.data.inputs", "FolderSource": "galzoo_tf.data.inputs",
    "ImageInputs": "galzoo_tf.data.inputs",
    "TrainConfig": "galzoo_tf.training.loop", "train": "galzoo_tf.training.loop",
    "load_model": "galzoo_tf.tasks.registry", "task_of": "galzoo_tf.tasks.registry",
    "PredictRequest": "galzoo_tf.tasks.requests", "CalibrateRequest": "galzoo_tf.tasks.requests",
    "calibrate_model": "galzoo_tf.tasks.calibrate",
    "predict": "galzoo_tf.catalogues.predict", "predict_catalogue": "galzoo_tf.catalogues.predict",
    "AcquireOptions": "galzoo_tf.active.acquire", "acquire": "galzoo_tf.active.acquire",
    "acquire_pool": "galzoo_tf.active.acquire", "run_campaign": "galzoo_tf.active.campaign",
    "CampaignOptions": "galzoo_tf.active.campaign", "population_fraction": "galzoo_tf.science.fraction",
}
__all__ = ["__version__", *API]


def __getattr__(name: str):
    """The API's names, imported on first use (PEP 562)."""
    if name not in API:
        raise AttributeError(f"module 'galzoo_tf' has no attribute {name!r}")
    return getattr(importlib.import_module(API[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)


KERAS_OBJECTS = ("galzoo_tf.models", "galzoo_tf.tasks.votes.loss", "galzoo_tf.tasks.parameters.loss")


def register_keras_objects() -> None:
    """Register every galzoo layer and loss with Keras by importing the modules that define them.

    They import Keras, TensorFlow and TFP but no other galzoo module that could be part-way
    through its own import, so this is safe whichever galzoo module imported Keras first.
    """
    for name in KERAS_OBJECTS:
        importlib.import_module(name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Runs ``register_keras_objects`` right after Keras itself is imported, whoever imports it."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # the real finders locate Keras; this one stays until Keras has run
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            execute(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            register_keras_objects()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
