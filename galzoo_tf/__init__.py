"""galzoo: calibrated probabilistic galaxy morphology and active learning."""

__version__ = "0.1.0"
