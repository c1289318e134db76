"""What a user asks of a catalogue or a calibration report, whatever the task, and what comes back to show.

Plain data with no TensorFlow, so the CLI checks its options before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from galzoo_tf.errors import BadInputError

REPORT = "calibration.json"  # the report every task writes in calibrate's --out
PREDICT_FORMATS = ("posterior", "kaggle")


@dataclass(frozen=True)
class PredictRequest:
    """What the user asked of a catalogue, whatever the task; each task makes its own options of it."""

    passes: int | None = None  # None: the task's default
    tta: bool = True
    seed: int = 0
    save_samples: bool = False
    interval: float = 0.9
    dropout_rate: float | None = None
    batch_size: int = 32
    corner_ids: tuple[str, ...] = ()
    format: str = "posterior"  # or "kaggle": the challenge's 37 weighted probabilities (vote models of every question)

    def __post_init__(self) -> None:
        if self.format not in PREDICT_FORMATS:
            raise BadInputError("bad option", f"--format must be one of {', '.join(PREDICT_FORMATS)}, not "
                                              f"{self.format!r}")
        if self.format == "kaggle" and (self.save_samples or self.corner_ids):
            raise BadInputError("bad option", "--format kaggle writes the 37 weighted probabilities only; "
                                              "--save-samples and --corner belong to the posterior format")


@dataclass(frozen=True)
class CalibrateRequest:
    """What the user asked of a calibration report, whatever the task."""

    split: str = "test"
    passes: int | None = None  # None: the task's default
    tta: bool = True
    seed: int = 0
    batch_size: int = 32
    tune_dropout: tuple[float, ...] = ()
    tune_split: str = "val"
    bias: bool = False
    expert_labels: Path | None = None
    expert_column: str | None = None
    expert_answer: str | None = None
    trained_rates: tuple[Path, ...] = ()  # parameter models of the same network trained at other dropout rates

    def __post_init__(self) -> None:
        if self.tune_dropout and self.tune_split == self.split:
            raise BadInputError("bad option", f"tune on another split than the one reported (--split {self.split})")
        if (self.expert_labels is None) != (self.expert_column is None):
            raise BadInputError("bad option", "--expert-labels CSV and --expert-column COL go together")


@dataclass(frozen=True)
class ReportTable:
    """A table for people: a title, column names and rows of text."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class CalibrationReport:
    """What calibrate wrote (``result`` is calibration.json) and what to show of it."""

    result: dict
    tables: list[ReportTable]
    footer: str
