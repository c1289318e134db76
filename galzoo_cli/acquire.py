"""`galzoo acquire`: which galaxies volunteers should label next, and `galzoo acquire simulate` campaigns."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli import options as shared
from galzoo_cli.console import counting, counting_stages, engine_for, friendly_errors, report, table
from galzoo_tf.engine import EngineSpec
from galzoo_tf.errors import BadInputError

app = typer.Typer(invoke_without_command=True, no_args_is_help=False, rich_markup_mode="rich")
Strategy = Annotated[str, typer.Option(help="bald (mutual information between votes and weights, top n), "
                                            "power-bald (n drawn with odds BALD^1, for batches that do not "
                                            "repeat one kind of galaxy; Kirsch et al. 2023), entropy "
                                            "(predictive entropy), variance (of rho) or random.")]


@app.callback()
@friendly_errors
def acquire(
    ctx: typer.Context,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Model directory from `galzoo train`.")]
    = None,
    pool: Annotated[Path | None, typer.Option(help="Record folder of unlabelled galaxies (any splits).")] = None,
    images: shared.Images = None,
    fits_dir: shared.FitsDir = None,
    n: Annotated[int, typer.Option("--n", help="How many galaxies to pick.", min=1)] = 128,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV of the picked galaxies (rank, id, score, mean "
                                                          "rho); a montage PNG and a provenance JSON go "
                                                          "beside it.")] = Path("acquired.csv"),
    strategy: Strategy = "bald",
    passes: shared.Passes = 30,
    tta: shared.Tta = True,
    batch_size: shared.BatchSize = 32,
    seed: shared.Seed = 0,
    exclude: Annotated[list[str] | None, typer.Option(help="An id never to pick, or a .txt (one id per line) "
                                                           "or .csv ('id' column) of them; repeatable.")] = None,
    labelled: Annotated[Path | None, typer.Option(help="Records whose galaxies are labelled (default: the "
                                                       "model's training records, all splits).")] = None,
    votes: Annotated[int | None, typer.Option(help="N, the responses a galaxy will get (default: the mean N "
                                                   "of the training galaxies). With --tree-votes: the "
                                                   "volunteers who start the tree.", min=1)] = None,
    question: Annotated[str | None, typer.Option(help="Score this question only (default: every question "
                                                      "the model answers).")] = None,
    tree_votes: Annotated[bool | None, typer.Option("--tree-votes/--mean-votes", help="Give each galaxy "
                                                    "its own N: the volunteers times its predicted chance "
                                                    "of reaching the question, from the model's answers "
                                                    "to the whole tree (so no bar votes are asked of a "
                                                    "smooth galaxy). Default: when the model answers the "
                                                    "whole tree (e.g. base) and --votes is not given.",
                                                    show_default=False)] = None,
    skip_bad: shared.SkipBad = False,
    engine: shared.EngineName = "local",
    scheduler: shared.Scheduler = None,
) -> None:
    """Rank an unlabelled pool by how much labelling each galaxy would teach the model (Walmsley et al. 2019, §3) and write the top --n.

    BALD: the mutual information between a galaxy's vote count and the network weights, from T MC dropout samples, exact over k = 0..N. The pool is streamed: any size fits; with --engine dask each shard is ranked on a Dask worker and the top lists are merged, with the same result. Galaxies in the model's training, validation or test records, and --exclude ids, are never picked. `galzoo acquire simulate --help`: campaigns that measure how many labels BALD saves.
    """  # noqa: E501
    if ctx.invoked_subcommand is not None:
        return
    if model is None:
        raise BadInputError("bad option", "give --model DIR and a pool (--pool RECORDS, --images DIR or --fits "
                                          "DIR); see galzoo acquire --help")
    from galzoo_tf.active.acquire import AcquireOptions, acquire_pool
    from galzoo_tf.data.inputs import ImageInputs

    options = AcquireOptions(n=n, strategy=strategy, passes=passes, tta=tta, seed=seed, batch_size=batch_size,
                             total_votes=votes, question=question, tree_votes=tree_votes)
    inputs = ImageInputs(pool, images, fits_dir, skip_bad=skip_bad)
    with counting("scoring the pool") as progress:
        result = acquire_pool(model, inputs, out, options, exclude or [], labelled, progress,
                              EngineSpec(engine, scheduler), engine_for)
    rows = [["galaxies scored", f"{result.scored:,}"], ["picked", f"{n:,} ({strategy})"]]
    rows += [[f"not scored: {reason}", f"{count:,}"] for reason, count in result.excluded.items()]
    report.print(table(f"acquisition list {out}", ["", ""], rows))
    report.print(f"montage of the most and least informative galaxies: {result.montage}")


@app.command("simulate")
@friendly_errors
def simulate(
    data: Annotated[Path, typer.Option(help="Record folder with votes: the test split is the fixed test set, "
                                            "the train split the pool whose votes are revealed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Campaign folder: results.csv, acquired.csv, "
                                                          "summary.json, rmse.png, acquired.png (and "
                                                          "features.npz with --representation).")],
    question: Annotated[str, typer.Option(help="The question the models learn.")] = "bar",
    representation: Annotated[str | None, typer.Option(help="A vote model (directory, or 'base') that never "
                                                            "learned the question (galzoo train --question all "
                                                            "--leave-out bar): the pool is embedded once by "
                                                            "its trunk and each iteration trains only an MC "
                                                            "dropout head on the labelled features, seconds "
                                                            "per iteration. Default: the whole CNN on images.")]
    = None,
    initial: Annotated[int, typer.Option(help="Random labelled galaxies to start from.", min=1)] = 512,
    step: Annotated[int, typer.Option(help="Galaxies acquired per iteration.", min=1)] = 256,
    iterations: Annotated[int, typer.Option(help="Train-evaluate-acquire rounds.", min=1)] = 20,
    repeats: Annotated[int, typer.Option(help="Independent repeats (new initial set each).", min=1)] = 4,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies to compare, each against random: "
                                                 "those of `galzoo acquire`, and with --representation epig "
                                                 "(expected information about the pool's predictions; "
                                                 "Bickford Smith et al. 2023) and power-epig.")]
    = "bald,random",
    epochs: Annotated[int, typer.Option(help="Images without --steps: training epochs per iteration (the best "
                                             "validation epoch is kept).", min=1)] = 10,
    steps: Annotated[int | None, typer.Option(help="Train exactly this many steps per iteration (the paper's "
                                                   "protocol; default 1000 for heads on --representation).",
                                              min=1)] = None,
    hidden: Annotated[int, typer.Option(help="With --representation: units of a ReLU layer before the head's "
                                             "MC dropout (0: a linear head).", min=0)] = 0,
    ensemble: Annotated[int, typer.Option(help="With --representation: train this many heads side by side and "
                                               "use them as the posterior samples (a deep ensemble, Beluch et "
                                               "al. 2018) instead of MC dropout (1).", min=1)] = 1,
    image_size: Annotated[int, typer.Option(help="Model input size (64 runs on a CPU; 128 is the paper's).",
                                            min=16)] = 128,
    batch_size: Annotated[int, typer.Option(help="Training batch size.", min=1)] = 64,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate of every iteration's training.",
                                                 min=0)] = 1e-3,
    passes: shared.Passes = 30,
    tta: Annotated[bool, typer.Option("--tta/--no-tta", help="Augment each pass when scoring the pool "
                                                             "(default off: MC dropout only, T times "
                                                             "cheaper).")] = False,
    warm_start: Annotated[bool | None, typer.Option("--warm-start/--from-scratch", help="Continue from the "
                                                    "previous iteration's weights, or retrain from a fresh "
                                                    "initialisation. Default: warm for images, from scratch "
                                                    "for heads on --representation.", show_default=False)]
    = None,
    tree_votes: Annotated[bool | None, typer.Option("--tree-votes/--mean-votes", help="With --representation: "
                                                    "each galaxy's N for BALD is the volunteers times its "
                                                    "chance of reaching the question, from the "
                                                    "representation's own heads. Default: when it has them.",
                                                    show_default=False)] = None,
    min_votes: Annotated[int, typer.Option(help="Galaxies with fewer votes for the question are left out "
                                                "(Walmsley et al. 2019: 10 for bar).", min=1)] = 1,
    seed: shared.Seed = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted campaign at its last "
                                                          "finished iteration.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start again in a used folder.")] = False,
) -> None:
    """Simulate active learning with stored votes (Walmsley et al. 2019, §3.5): does BALD reach the RMSE of random selection with fewer new labels?

    Per repeat: a random initial set, then per iteration train, measure loss and RMSE on the test split (against the true rho too, for simulated records), acquire --step galaxies with each strategy, reveal their votes. summary.json reports label_savings of each strategy over random with a bootstrap interval over repeats, and the paired per-budget differences. On a 2-core CPU use --representation (docs/acquisition.md, `make campaign`); the from-scratch CNN is the cold-start contrast: --image-size 64 --epochs 8 --iterations 6 --repeats 3 --initial 256.
    """  # noqa: E501
    from galzoo_tf.active.campaign import CampaignOptions, run_campaign

    options = CampaignOptions(question=question, initial=initial, step=step, iterations=iterations,
                              repeats=repeats, strategies=tuple(s.strip() for s in strategies.split(",")),
                              epochs=epochs, steps=steps, image_size=image_size, batch_size=batch_size,
                              passes=passes, tta=tta, warm_start=warm_start, min_votes=min_votes,
                              representation=representation, hidden=hidden, tree_votes=tree_votes,
                              ensemble=ensemble, learning_rate=learning_rate, seed=seed)
    stages = [("campaign", "iterations"), *([("embedding the records", "galaxies")] if representation else [])]
    with counting_stages(*stages) as (progress, *embedding):
        summary = run_campaign(data, out, options, resume, overwrite, progress, *embedding)
    metric = summary["primary_metric"]
    name = "RMSE vs true rho" if metric == "rmse_truth" else "RMSE vs k/N"
    rows = [[f"final {name}, {s}", f"{v:.4f}"] for s, v in summary[f"final_{metric}"].items()]
    for strategy, savings in summary.get("label_savings", {}).items():
        low, high = savings["interval_90"]
        rows += [[f"label savings of {strategy} over random",
                  f"{savings['savings']:.0%} at {name} {savings[metric]:.4f} (90% interval {low:.0%} to {high:.0%})"
                  if savings["savings"] == savings["savings"] else  # not NaN
                  "undefined: the smoothed curves never reach a common RMSE beyond the first step"]]
    report.print(table(f"campaign {out}", ["", ""], rows))
    report.print(f"results: {out / 'results.csv'}; summary: {out / 'summary.json'}; figures: "
                 f"{', '.join(summary['figures'])}")
