"""Bias report (Walmsley et al. 2019, §2.7): for which galaxies is the model most surprised by the votes?

Per galaxy the surprise is -ln p(k_obs | N), the negative log-likelihood of the observed votes
under the MC dropout posterior. An additive model of the surprise is fitted on properties that
are not morphology (size, brightness, axis ratio and signal-to-noise measured from each image;
on simulated records also their true values) and on the morphology itself (the observed vote
fraction). The additive model is scikit-learn's ``HistGradientBoostingRegressor`` with
``interaction_cst="no_interactions"``: every tree splits on one property, so the fit is a sum
of one shape function per property, the structure of the Explainable Boosting Machine the
paper used, from a library we already depend on. Importance: the permutation importance on
held-out galaxies (the drop in R^2 when a property is shuffled); shape: partial dependence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from galzoo_tf.errors import BadInputError
from galzoo_tf.plots import figure_grid

TRUE_PROPERTIES = {"truth/r_e_arcsec": "true_size_arcsec", "truth/magnitude": "true_magnitude",
                   "truth/axis_ratio": "true_axis_ratio", "truth/visibility": "true_visibility"}
MEASURED_VS_TRUE = (("size_px", "true_size_arcsec"), ("brightness", "true_magnitude"),
                    ("axis_ratio", "true_axis_ratio"))
MIN_GALAXIES = 40
BORDER = 4  # pixels of each edge that estimate the sky


def image_properties(images: np.ndarray) -> dict[str, np.ndarray]:
    """Size (flux-weighted rms radius, px), brightness (log10 sky-subtracted flux), axis ratio and S/N per image."""
    grey = np.asarray(images, np.float64).mean(axis=-1)
    edges = np.concatenate([grey[:, :BORDER].reshape(len(grey), -1), grey[:, -BORDER:].reshape(len(grey), -1),
                            grey[:, :, :BORDER].reshape(len(grey), -1), grey[:, :, -BORDER:].reshape(len(grey), -1)],
                           axis=1)
    sky = np.median(edges, axis=1)
    noise = np.maximum(1.4826 * np.median(np.abs(edges - sky[:, None]), axis=1), 1e-6)
    flux = np.clip(grey - sky[:, None, None], 0, None)
    total = flux.sum(axis=(1, 2)) + 1e-9
    y, x = np.mgrid[:grey.shape[1], :grey.shape[2]].astype(np.float64)
    cx, cy = (flux * x).sum(axis=(1, 2)) / total, (flux * y).sum(axis=(1, 2)) / total
    dx, dy = x[None] - cx[:, None, None], y[None] - cy[:, None, None]
    xx, yy, xy = ((flux * m).sum(axis=(1, 2)) / total for m in (dx * dx, dy * dy, dx * dy))
    half_trace, root = (xx + yy) / 2, np.sqrt(((xx - yy) / 2) ** 2 + xy ** 2)
    above = (flux > 2 * noise[:, None, None]).sum(axis=(1, 2))
    return {"size_px": np.sqrt(xx + yy), "brightness": np.log10(total),
            "axis_ratio": np.sqrt(np.clip(half_trace - root, 0, None) / np.maximum(half_trace + root, 1e-12)),
            "signal_to_noise": total / (noise * np.sqrt(np.maximum(above, 1)))}


def surprise(count_probabilities: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """-ln p(k_obs | N) per row of posteriors p(k) on k = 0..K-1 (floored at 1e-12)."""
    chosen = count_probabilities[np.arange(len(observed)), np.asarray(observed, int)]
    return -np.log(np.maximum(chosen, 1e-12))


def bias_report(properties: dict[str, np.ndarray], surprises: np.ndarray, seed: int = 0) -> tuple[dict, object]:
    """Fit the additive model of surprise on ``properties``; importance per property, ranked. Returns (report, fit)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split

    names = list(properties)
    table = np.column_stack([np.asarray(properties[n], np.float64) for n in names])
    keep = np.isfinite(table).all(axis=1) & np.isfinite(surprises)
    if keep.sum() < MIN_GALAXIES:
        raise BadInputError("too few galaxies", f"the bias report needs at least {MIN_GALAXIES} galaxies with "
                                                f"finite properties, not {int(keep.sum())}")
    train_x, test_x, train_y, test_y = train_test_split(table[keep], surprises[keep], test_size=0.5,
                                                        random_state=seed)
    fit = HistGradientBoostingRegressor(interaction_cst="no_interactions", learning_rate=0.05, max_iter=300,
                                        max_leaf_nodes=8, min_samples_leaf=max(5, len(train_y) // 50),
                                        early_stopping=True, validation_fraction=0.2, random_state=seed)
    fit.fit(train_x, train_y)
    permuted = permutation_importance(fit, test_x, test_y, n_repeats=10, random_state=seed)
    importance = {n: {"mean": float(m), "std": float(s)}
                  for n, m, s in zip(names, permuted.importances_mean, permuted.importances_std, strict=True)}
    report = {"model": "sklearn HistGradientBoostingRegressor, interaction_cst='no_interactions' (additive)",
              "target": "surprise: -ln p(observed k | N) under the MC dropout posterior",
              "galaxies": int(keep.sum()), "held_out": int(len(test_y)),
              "mean_surprise": float(surprises[keep].mean()),
              "r2_held_out": float(fit.score(test_x, test_y)),
              "importance": importance, "ranking": sorted(names, key=lambda n: -importance[n]["mean"])}
    measured = {f"{a} vs {b}": float(spearmanr(properties[a][keep], properties[b][keep]).statistic)
                for a, b in MEASURED_VS_TRUE if a in properties and b in properties}
    if measured:
        report["spearman_measured_vs_true"] = measured
    return report, (fit, names, test_x)


def plot_bias(path: Path, report: dict, fitted: tuple, title: str) -> Path:
    """Importance bars and each property's partial dependence (its shape function), one figure."""
    from sklearn.inspection import partial_dependence

    fit, names, held_out = fitted
    ranking, columns = report["ranking"], 4
    with figure_grid(path, title, rows=-(-(len(names) + 1) // columns), columns=columns, size=(3.4, 2.8)) as grid:
        axes = grid.ravel()
        axes[0].barh(ranking[::-1], [report["importance"][n]["mean"] for n in ranking[::-1]],
                     xerr=[report["importance"][n]["std"] for n in ranking[::-1]], color="tab:blue")
        axes[0].set_xlabel("permutation importance (drop in R^2)")
        for axis, name in zip(axes[1:], ranking, strict=False):
            dependence = partial_dependence(fit, held_out, [names.index(name)], grid_resolution=40)
            axis.plot(dependence["grid_values"][0], dependence["average"][0], color="tab:red")
            axis.set_xlabel(name)
            axis.set_ylabel("surprise (shape)")
        for axis in axes[len(names) + 1:]:
            axis.axis("off")
    return path
