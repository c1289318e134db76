"""`galzoo train`: fit a Bayesian vote CNN (Binomial likelihood, MC dropout) on prepared records."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli.console import friendly_errors, report, table


@friendly_errors
def train(
    data: Annotated[Path, typer.Option(help="Record folder written by `galzoo prepare`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory: checkpoints, logs, model.keras and "
                                                          "galzoo.json.")],
    question: Annotated[str, typer.Option(help="Question to learn (e.g. bar, smooth; `galzoo schema` lists them), "
                                               "or 'all' for one model with a head per question.")] = "bar",
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping may end sooner).", min=1)] = 20,
    batch_size: Annotated[int, typer.Option(help="Galaxies per step (global, across replicas).", min=1)] = 64,
    image_size: Annotated[int, typer.Option(help="Side of the augmented model input in pixels.", min=16)] = 128,
    dropout: Annotated[float, typer.Option(help="Dropout rate before the output layer (MC dropout later).",
                                           min=0, max=0.95)] = 0.5,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (reduced x0.3 on plateau).",
                                                 min=0)] = 1e-3,
    min_votes: Annotated[int, typer.Option(help="Train only on galaxies with at least this many votes N for the "
                                                "question (Walmsley et al. 2019 use 10 for bar).", min=0)] = 1,
    architecture: Annotated[str, typer.Option(help="'paper' (the CNN of Walmsley et al. 2019) or 'efficientnet' "
                                                   "(EfficientNetB0 trunk, untrained; for GPUs).")] = "paper",
    colour: Annotated[bool, typer.Option("--colour/--greyscale", help="Keep colour channels (default: average to "
                                                                      "greyscale, as the paper).")] = False,
    zoom: Annotated[tuple[float, float] | None, typer.Option(help="Crop zoom range, e.g. 1.7 1.9 (default: the "
                                                                  "question's, from the schema).")] = None,
    central_crop: Annotated[bool | None, typer.Option("--central-crop/--random-crop", help="Crop at the centre or "
                                                      "at a random position (default: the question's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling, augmentation and dropout.")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the unfinished run in --out; ends as an "
                                                          "uninterrupted run would.")] = False,
    mixed_precision: Annotated[bool, typer.Option("--mixed-precision", help="Compute in float16 on GPU (bfloat16 "
                                                  "on CPU); logits and loss stay float32.")] = False,
    strategy: Annotated[str, typer.Option(help="tf.distribute: auto, default, mirrored (GPUs of one host) or "
                                               "multiworker (hosts listed in TF_CONFIG).")] = "auto",
    jit: Annotated[bool, typer.Option("--jit/--no-jit", help="XLA-compile the training step (faster on GPU, "
                                                             "slower on CPU here).")] = False,
    patience: Annotated[int, typer.Option(help="Epochs without validation improvement before stopping.",
                                          min=1)] = 5,
) -> None:
    """Train a Bayesian CNN whose outputs parameterise Binomial distributions of vote counts (Walmsley et al. 2019).

    The input pipeline augments every image inside the TF graph (greyscale, flips, rotation, contrast, crop at the question's zoom, resize). Early stopping and learning-rate reduction watch the validation loss; a checkpoint is written every epoch, so --resume continues a killed run.
    """  # noqa: E501
    from galzoo_tf.training import TrainConfig
    from galzoo_tf.training import train as run

    config = TrainConfig(question=question, epochs=epochs, batch_size=batch_size, image_size=image_size,
                         dropout=dropout, learning_rate=learning_rate, seed=seed, min_votes=min_votes,
                         architecture=architecture, greyscale=not colour, zoom=zoom, central_crop=central_crop,
                         mixed_precision=mixed_precision, strategy=strategy, jit=jit, patience=patience)
    result = run(data, out, config, resume=resume, verbose=1 if sys.stdout.isatty() else 2)
    rows = [["galaxies (train / val)", f"{result.train_galaxies:,} / {result.val_galaxies:,}"],
            ["epochs run", str(result.epochs_run)],
            ["best validation loss", f"{result.best_val_loss:.4f}"],
            ["baseline: training-set mean rho", f"{result.baseline_val_loss:.4f}"],
            ["improvement over baseline", f"{result.baseline_val_loss - result.best_val_loss:+.4f} per galaxy"]]
    report.print(table(f"trained {question} model in {out}", ["", ""], rows))
