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
    task: Annotated[str, typer.Option(help="'votes': Binomial vote posteriors (Walmsley et al. 2019); "
                                           "'parameters': GaMPEN posteriors of L_B/L_T, R_e and flux (Ghosh et "
                                           "al. 2022) from records with truth parameters.")] = "votes",
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping may end sooner).", min=1)] = 20,
    batch_size: Annotated[int, typer.Option(help="Galaxies per step (global, across replicas).", min=1)] = 64,
    image_size: Annotated[int, typer.Option(help="Side of the augmented model input in pixels.", min=16)] = 128,
    dropout: Annotated[float | None, typer.Option(help="Dropout rate of the MC dropout layers (default 0.5 for "
                                                  "votes, before the output layer; 7e-4 for parameters, "
                                                  "before every layer as GaMPEN).", min=0, max=0.95)] = None,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (reduced x0.3 on plateau).",
                                                 min=0)] = 1e-3,
    min_votes: Annotated[int | None, typer.Option(help="Train only on galaxies with at least this many votes N "
                                                       "for the question (default: the question's cut in the "
                                                       "tree, 10 for GZ2's bar as Walmsley et al. 2019, else 1).",
                                                  min=0)] = None,
    architecture: Annotated[str, typer.Option(help="'paper' (the CNN of Walmsley et al. 2019), 'efficientnet' "
                                                   "(EfficientNetB0 trunk; for GPUs) or 'resnet50' (ResNet50 trunk, "
                                                   "the lab report's baseline); keras.applications networks start "
                                                   "untrained.")] = "paper",
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
    width: Annotated[float, typer.Option(help="Parameters: GaMPEN's filters and units x WIDTH (1 = the paper's "
                                              "VGG-16; 0.125 with --image-size 64 trains on a CPU).",
                                         min=0.01, max=4)] = 1.0,
    l2: Annotated[float, typer.Option(help="Parameters: L2 regularisation strength lambda (GaMPEN's 1e-4).",
                                      min=0)] = 1e-4,
    init_from: Annotated[Path | None, typer.Option(help="Fine-tune 'base' (the shipped base model) or this trained "
                                                        "model of the same task and input "
                                                        "size. Votes: its trunk, with a new head for each question "
                                                        "of these records' tree. Parameters: the whole network "
                                                        "(its target scaler is kept).")] = None,
    freeze: Annotated[list[str] | None, typer.Option(help="With --init-from: keep layers fixed. Votes: trunk (train "
                                                          "the heads only). Parameters: stn, block1..block5, dense; "
                                                          "repeatable.")] = None,
    trunk_lr_factor: Annotated[float | None, typer.Option(help="Votes, with --init-from and no --freeze: the "
                                                               "trunk learns at this times the heads' rate "
                                                               "(default 0.1), so few labels adapt the "
                                                               "pretrained representation without wiping it.",
                                                          min=0, max=1)] = None,
    dense_activation: Annotated[str | None, typer.Option(help="Votes, paper architecture: the 128-unit dense "
                                                              "layer's activation, 'linear' (the paper's, the "
                                                              "default) or 'relu' (galzoo's before it followed "
                                                              "the paper); with "
                                                              "--init-from, the source model's.")] = None,
    head_link: Annotated[str, typer.Option(help="Votes: 'softmax' gives each question one softmax over its "
                                                "answers (rho sum to 1, multinomial votes; the paper's 2-way "
                                                "softmax); 'one-vs-rest' a sigmoid per answer (older galzoo "
                                                "models).")] = "softmax",
    leave_out: Annotated[list[str] | None, typer.Option(help="With --question all: give these questions no head, "
                                                             "so the trunk never learns them (a representation "
                                                             "for active-learning campaigns on them); "
                                                             "repeatable.")] = None,
) -> None:
    """Train a Bayesian CNN: Binomial distributions of vote counts (Walmsley et al. 2019), or with --task parameters GaMPEN's multivariate normal of (logit L_B/L_T, ln R_e, ln F) (Ghosh et al. 2022).

    Votes: the input pipeline augments every image inside the TF graph (greyscale, flips, rotation, contrast, crop at the question's zoom, resize). Early stopping and learning-rate reduction watch the validation loss; a checkpoint is written every epoch, so --resume continues a killed run. Parameters: images get flips and an arcsinh stretch (no random zoom or contrast change, which would alter size and flux; --zoom Z Z keeps the central 1/Z of every frame, for small inputs on CPUs); --image-size is GaMPEN's input (239 in the paper). Examples: docs/parameters.md.
    """  # noqa: E501
    from galzoo_tf.training.loop import TrainConfig
    from galzoo_tf.training.loop import train as run

    config = TrainConfig(question=question, task=task, epochs=epochs, batch_size=batch_size, image_size=image_size,
                         dropout=dropout, learning_rate=learning_rate, seed=seed, min_votes=min_votes,
                         architecture=architecture, greyscale=not colour, zoom=zoom, central_crop=central_crop,
                         mixed_precision=mixed_precision, strategy=strategy, jit=jit, patience=patience,
                         width=width, l2=l2, init_from=str(init_from) if init_from else None,
                         freeze=tuple(freeze or ()), trunk_lr_factor=trunk_lr_factor,
                         leave_out=tuple(leave_out or ()), dense_activation=dense_activation,
                         head_link=head_link)
    result = run(data, out, config, resume=resume, verbose=1 if sys.stdout.isatty() else 2)
    rows = [["galaxies (train / val)", f"{result.train_galaxies:,} / {result.val_galaxies:,}"],
            ["epochs run", str(result.epochs_run)],
            ["best validation loss", f"{result.best_val_loss:.4f}"],
            [result.baseline_label, f"{result.baseline_val_loss:.4f}"],
            ["improvement over baseline", f"{result.baseline_val_loss - result.best_val_loss:+.4f} per galaxy"]]
    report.print(table(f"{result.title} in {out}", ["", ""], rows))
