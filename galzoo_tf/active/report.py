"""What a simulated campaign shows: LOWESS curves of RMSE vs new labels, label savings, and the paper's figures.

Label savings compare two strategies at equal RMSE: for each RMSE level both smoothed
curves reach, n_s is the number of new labels strategy s needs to reach it; savings =
1 - n_bald / n_random. We report the largest over levels (with the level), as the paper
does when it quotes "equal RMSE with 35-60 % fewer new labels", and a bootstrap interval
that resamples whole repeats (paired: both strategies of a repeat share their initial set).
Levels either curve reaches before the first acquisition step are skipped: every strategy has
the same model at 0 new labels, and below the first step the curves are only LOWESS between it
and the first measured step.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.nonparametric.smoothers_lowess import lowess

from galzoo_tf import __version__
from galzoo_tf.fileio import nan_to_null, write_json_atomic
from galzoo_tf.plots import save_figure

LOWESS_FRACTION = 0.6
RMSE_FIGURE, ACQUIRED_FIGURE = "rmse.png", "acquired.png"
BOOTSTRAP = 1000


def smoothed(results: pd.DataFrame, metric: str = "rmse") -> tuple[np.ndarray, np.ndarray]:
    """LOWESS fit of ``metric`` against new labels over every repeat, at each distinct number of new labels."""
    with warnings.catch_warnings():  # flat or two-point curves divide by zero inside statsmodels: NaN, handled
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted = lowess(results[metric].to_numpy(float), results["new_labels"].to_numpy(float),
                        frac=LOWESS_FRACTION, return_sorted=True)
    x = np.unique(fitted[:, 0])
    return x, np.array([fitted[fitted[:, 0] == value, 1].mean() for value in x])


def labels_to_reach(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """New labels at which the curve first falls to ``level`` (linear between points); NaN if never."""
    below = np.flatnonzero(y <= level)
    if not below.size:
        return float("nan")
    j = below[0]
    if j == 0:
        return float(x[0])
    return float(x[j - 1] + (x[j] - x[j - 1]) * (y[j - 1] - level) / (y[j - 1] - y[j]))


def label_savings(results: pd.DataFrame, strategy: str = "bald", baseline: str = "random",
                  metric: str = "rmse", levels: int = 200) -> dict:
    """The largest fraction of new labels ``strategy`` saves over ``baseline`` at equal smoothed ``metric``."""
    best = {"savings": float("nan"), metric: float("nan"), f"labels_{strategy}": float("nan"),
            f"labels_{baseline}": float("nan")}
    ours, theirs = (results[results["strategy"] == s] for s in (strategy, baseline))
    if ours["new_labels"].nunique() < 2 or theirs["new_labels"].nunique() < 2:
        return best  # a curve needs two numbers of labels (a campaign cut short, a resampled repeat)
    xa, ya = smoothed(ours, metric)
    xb, yb = smoothed(theirs, metric)
    first_step = xb[1]  # below one acquisition step both curves are LOWESS between the shared start and step 1
    for level in np.linspace(max(ya.min(), yb.min()), min(ya.max(), yb.max()), levels):
        needed, needed_baseline = labels_to_reach(xa, ya, level), labels_to_reach(xb, yb, level)
        if np.isfinite(needed) and min(needed, needed_baseline) >= first_step:
            savings = 1 - needed / needed_baseline
            if not savings <= best["savings"]:  # also replaces the initial NaN
                best = {"savings": savings, metric: float(level), f"labels_{strategy}": needed,
                        f"labels_{baseline}": needed_baseline}
    return best


def savings_by_budget(results: pd.DataFrame, strategy: str, metric: str) -> list[dict]:
    """At each budget b of random's campaign: the new labels ``strategy`` needs to reach the RMSE random's LOWESS
    curve has at b, and 1 - that / b. Unlike ``label_savings`` (the best level) it reads every budget alike."""
    xb, yb = smoothed(results[results["strategy"] == "random"], metric)
    xa, ya = smoothed(results[results["strategy"] == strategy], metric)
    rows = []
    for budget, level in zip(xb[1:], yb[1:], strict=True):
        needed = labels_to_reach(xa, ya, level)
        rows.append({"new_labels": int(budget), metric: float(level), f"labels_{strategy}": needed,
                     "savings": 1 - needed / budget if np.isfinite(needed) else float("nan")})
    return rows


def bootstrap_savings(results: pd.DataFrame, seed: int = 0, draws: int = BOOTSTRAP, **kwargs) -> np.ndarray:
    """Savings recomputed on repeats drawn with replacement (the same repeats for both strategies)."""
    repeats = np.sort(results["repeat"].unique())
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        chosen = rng.choice(repeats, len(repeats), replace=True)
        sample = pd.concat([results[results["repeat"] == r].assign(repeat=i) for i, r in enumerate(chosen)])
        values.append(label_savings(sample, **kwargs)["savings"])
    return np.asarray(values, float)


def savings_with_interval(results: pd.DataFrame, strategy: str, metric: str, seed: int) -> dict:
    """``label_savings`` of ``strategy`` over random on ``metric``, with its 90 % bootstrap interval."""
    point = label_savings(results, strategy, "random", metric)
    draws = bootstrap_savings(results, seed, strategy=strategy, baseline="random", metric=metric)
    finite = draws[np.isfinite(draws)]
    interval = np.percentile(finite, [5, 95]).tolist() if finite.size else [float("nan")] * 2
    return {**point, "metric": metric, "interval_90": interval, "bootstrap_draws": len(draws),
            "bootstrap_undefined": int(len(draws) - finite.size),
            "definition": f"largest 1 - n_{strategy} / n_random over {metric} levels both LOWESS curves reach; "
                          "n = new labels needed; interval: 5-95th percentiles over repeats resampled with "
                          "replacement"}


def paired_differences(results: pd.DataFrame, strategy: str, metric: str, seed: int,
                       draws: int = BOOTSTRAP) -> list[dict]:
    """Per budget (iteration), the mean over repeats of ``strategy``'s ``metric`` minus random's in the same
    repeat (negative: better), with a 90 % bootstrap interval over repeats."""
    pivot = results.pivot_table(index=["iteration", "repeat"], columns="strategy", values=metric)
    difference = (pivot[strategy] - pivot["random"]).dropna()
    rng, rows = np.random.default_rng(seed), []
    for iteration, values in difference.groupby(level="iteration"):
        values = values.to_numpy()
        means = rng.choice(values, (draws, len(values)), replace=True).mean(axis=1)
        labels = results[(results["iteration"] == iteration) & (results["strategy"] == strategy)]["new_labels"]
        rows.append({"iteration": int(iteration), "new_labels": int(labels.iloc[0]), "mean": float(values.mean()),
                     "interval_90": np.percentile(means, [5, 95]).tolist()})
    return rows


def acquisition_diagnostics(results: pd.DataFrame, acquired: pd.DataFrame) -> dict:
    """Per strategy and iteration: the mean true rho (or k/N) of the batch acquired, and how alike the batch is
    (mean pairwise cosine similarity of its features, where the learner has features)."""
    column = "true_rho" if "true_rho" in acquired else "observed_fraction"
    report = {}
    if len(acquired):
        report[f"acquired_mean_{column}"] = {
            s: rows.groupby("iteration")[column].mean().round(4).tolist() for s, rows in acquired.groupby("strategy")}
    if "batch_similarity" in results:
        report["batch_similarity"] = {s: rows.groupby("iteration")["batch_similarity"].mean().dropna().round(4)
                                      .tolist() for s, rows in results.groupby("strategy")}
    return report


def summary(results: pd.DataFrame, strategies: list[str], seed: int,
            acquired: pd.DataFrame | None = None) -> dict:
    """Final RMSEs per strategy and, for every strategy against random, label savings with a 90 % interval
    (on the RMSE against the true rho where the records have it, the primary metric; also against k/N), the
    savings at each of random's budgets, and the paired per-budget differences."""
    last = results[results["iteration"] == results["iteration"].max()]
    metrics = [m for m in ("rmse_truth", "rmse") if m in results]
    report = {**{f"final_{m}": {s: float(last[last["strategy"] == s][m].mean()) for s in strategies}
                 for m in metrics},
              "primary_metric": metrics[0],
              "iterations_done": int(results["iteration"].max()) + 1,
              "repeats_done": int(results["repeat"].nunique())}
    others = [s for s in strategies if s != "random"]
    if "random" in strategies and others and results["iteration"].max() >= 1:
        report["label_savings"] = {s: savings_with_interval(results, s, metrics[0], seed) for s in others}
        if len(metrics) > 1:
            report["label_savings_observed"] = {s: savings_with_interval(results, s, "rmse", seed) for s in others}
        report["paired_differences"] = {s: paired_differences(results, s, metrics[0], seed) for s in others}
        report["savings_by_budget"] = {s: savings_by_budget(results, s, metrics[0]) for s in others}
    return {**report, **acquisition_diagnostics(results, acquired if acquired is not None else pd.DataFrame())}


CURVES = {"train_loss": "training loss per galaxy", "eval_loss": "test loss per galaxy",
          "rmse": "RMSE of mean rho vs observed k/N", "rmse_truth": "RMSE of mean rho vs true rho"}


def plot_rmse(results: pd.DataFrame, path: Path, metrics: tuple[str, ...] = tuple(CURVES)) -> Path:
    """Training loss, test loss and test RMSE vs new labels per strategy, stacked as Walmsley et al. (2019)
    Figs. 11-12: each repeat's points, the spread over repeats and the LOWESS fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = tuple(m for m in metrics if m in results)
    figure, axes = plt.subplots(len(metrics), 1, figsize=(7, 3.2 * len(metrics)), squeeze=False, sharex=True)
    for axis, metric in zip(axes[:, 0], metrics, strict=True):
        for i, (strategy, rows) in enumerate(results.groupby("strategy")):
            colour = f"C{i}"
            spread = rows.groupby("new_labels")[metric].agg(["min", "max"])
            axis.fill_between(spread.index, spread["min"], spread["max"], color=colour, alpha=0.15)
            axis.scatter(rows["new_labels"], rows[metric], color=colour, s=10, alpha=0.6)
            x, y = smoothed(rows, metric)
            axis.plot(x, y, color=colour, label=f"{strategy} (LOWESS)")
        axis.set_ylabel(CURVES[metric], fontsize=9)
        axis.legend(fontsize=8)
    axes[-1, 0].set_xlabel("new labels acquired")
    figure.suptitle("during the campaign: points per repeat, band = range over repeats")
    figure.tight_layout()
    return save_figure(figure, path, dpi=100)


DISTANCE_PANELS = {"magnitude": "true magnitude (fainter: farther)", "r_e_arcsec": "true R_e [arcsec] (smaller: "
                                                                                  "farther)"}


def plot_acquired(acquired: pd.DataFrame, path: Path) -> Path:
    """The vote fraction of the galaxies each strategy acquired, per iteration (Figs. 13-14), and, where the records
    hold the truth, their distance proxies against random's (Fig. 14's redshift panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = "true_rho" if "true_rho" in acquired else "observed_fraction"
    strategies = sorted(acquired["strategy"].unique())
    distances = [name for name in DISTANCE_PANELS if name in acquired]
    rows_count = 1 + bool(distances)
    figure, axes = plt.subplots(rows_count, max(len(strategies), len(distances)),
                                figsize=(5 * max(len(strategies), len(distances)), 4 * rows_count), squeeze=False)
    for axis, strategy in zip(axes[0], strategies, strict=False):
        rows = acquired[acquired["strategy"] == strategy]
        iterations = sorted(rows["iteration"].unique())
        axis.violinplot([rows[rows["iteration"] == i][column] for i in iterations], positions=iterations,
                        showmedians=True)
        axis.set_title(f"acquired by {strategy}")
        axis.set_xlabel("iteration")
        axis.set_ylabel("true rho" if column == "true_rho" else "observed vote fraction k/N")
    for axis, name in zip(axes[1] if distances else [], distances, strict=False):
        bins = np.histogram_bin_edges(acquired[name].dropna(), bins=25)
        for strategy in strategies:
            axis.hist(acquired.loc[acquired["strategy"] == strategy, name], bins=bins, histtype="step",
                      density=True, label=strategy)
        axis.set(xlabel=DISTANCE_PANELS[name], ylabel="density of acquired galaxies")
        axis.legend(fontsize=8)
    for axis in axes.flat:
        axis.set_visible(axis.has_data())  # the rows may be of different lengths
    figure.tight_layout()
    return save_figure(figure, path, dpi=100)


def write_report(out: Path, results: pd.DataFrame, acquired: pd.DataFrame, options, settings: dict) -> dict:
    """summary.json and the figures from the rows a campaign has so far."""
    report = {"galzoo_version": __version__, "seed": options.seed, "settings": settings,
              **summary(results, list(options.strategies), options.seed, acquired),
              "figures": [plot_rmse(results, out / RMSE_FIGURE).name]}
    if len(acquired):
        report["figures"].append(plot_acquired(acquired, out / ACQUIRED_FIGURE).name)
    write_json_atomic(out / "summary.json", nan_to_null(report))
    return report
