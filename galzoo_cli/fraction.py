"""`galzoo fraction`: the fraction of a catalogue's galaxies with a feature, with its uncertainty."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli.console import friendly_errors, report, table


@friendly_errors
def fraction(
    catalogue: Annotated[Path, typer.Option(help="A catalogue from `galzoo predict` (.fits, .csv, .parquet or a "
                                                 "partitioned folder).")],
    probability_column: Annotated[str | None, typer.Option(help="A column of per-galaxy probabilities, e.g. "
                                                                "expert_strong_bar_probability from an "
                                                                "expert-rescaled model.")] = None,
    answer: Annotated[str | None, typer.Option(help="Or an answer, e.g. bar_bar: the feature is 'the "
                                                    "volunteers' vote fraction reaches --threshold'.")] = None,
    threshold: Annotated[float, typer.Option(help="With --answer: the vote fraction that counts as having the "
                                                  "feature.", min=0, max=1)] = 0.5,
    draws: Annotated[int, typer.Option(help="Monte Carlo draws of the fraction.", min=100)] = 4000,
    seed: Annotated[int, typer.Option(help="Seed of the draws.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the summary as JSON here, and its "
                                                                 "histogram beside it (.png).")] = None,
) -> None:
    """Population fraction with uncertainty: propagate every galaxy's posterior into the distribution of the fraction of galaxies with a feature (mean, 68 % and 95 % intervals), beside the naive count of point predictions.

    Each galaxy has the feature with probability p (an expert probability column, or P(vote fraction >= threshold) from its posterior samples); the count is a sum of Bernoulli draws, so 'the bar fraction is 0.26' becomes 'is 0.26 +- 0.02'.
    """  # noqa: E501
    from galzoo_tf.science.fraction import FractionOptions, population_fraction

    result = population_fraction(catalogue, probability_column, answer, threshold,
                                 FractionOptions(draws=draws, seed=seed), out)
    summary = result.summary
    rows = [["galaxies", f"{summary['galaxies']:,}"],
            ["naive fraction (point predictions)", f"{summary['naive_fraction']:.4f}"],
            ["fraction (posterior mean +- std)", f"{summary['mean']:.4f} +- {summary['std']:.4f}"]]
    rows += [[f"{level} interval", f"{low:.4f} - {high:.4f}"] for level, (low, high) in summary["intervals"].items()]
    report.print(table(f"fraction with the feature: {result.feature}", ["", ""], rows))
    if result.out is not None:
        report.print(f"summary: {result.out}; histogram: {result.histogram}")
