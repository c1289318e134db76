"""Calibration figures (Walmsley et al. 2019, Figs. 4-5, 7-10): each writes a valid PNG atomically; AUC is right."""

from __future__ import annotations

from math import lgamma
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galzoo_tf.tasks.votes.figures import (
    majority_auc,
    plot_confusion,
    plot_count_posteriors,
    plot_coverage,
    plot_distributions,
    plot_roc,
)

GALAXIES = 50
log_gamma = np.vectorize(lgamma)


def binomial_pmf(k: np.ndarray, total: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """p(k | N, rho), zero where k > N; numpy only so the test needs neither scipy nor TensorFlow."""
    inside = k <= total
    kk = np.where(inside, k, 0)
    log_p = (log_gamma(total + 1) - log_gamma(kk + 1) - log_gamma(np.where(inside, total - kk, 0) + 1)
             + kk * np.log(rho) + (total - kk) * np.log1p(-rho))
    return np.where(inside, np.exp(log_p), 0.0)


def assert_png(path: Path) -> None:
    """The file is a readable, non-empty PNG and nothing temporary is left beside it."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 0 and image.size[1] > 0
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.fixture
def votes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    totals = rng.integers(5, 41, GALAXIES)
    rho = rng.beta(2, 3, GALAXIES)
    k = np.arange(41)
    single = binomial_pmf(k[None, :], totals[:, None], rho[:, None])
    mc = np.mean([binomial_pmf(k[None, :], totals[:, None], np.clip(rho + rng.normal(0, 0.1), 0.01, 0.99)[:, None])
                  for _ in range(5)], axis=0)
    return {"totals": totals, "rho": rho, "single": single, "mc": mc, "observed": rng.binomial(totals, rho)}


def test_coverage(tmp_path, votes):
    epsilons = np.linspace(0.0, 0.5, 11)
    actual = np.array([np.sum(np.abs(votes["observed"] / votes["totals"] - votes["rho"]) <= e) for e in epsilons])
    expected = {"MC dropout": actual * 1.02, "single network": actual * 0.8, "recalibrated (rate 0.7)": actual * 0.95}
    path = tmp_path / "coverage.png"
    assert plot_coverage(path, epsilons, expected, actual, "coverage") == path
    assert_png(path)


def test_count_posteriors(tmp_path, votes):
    chosen = slice(0, 6)  # 6 panels: two rows of four, two axes blank
    path = tmp_path / "posteriors.png"
    assert plot_count_posteriors(path, votes["mc"][chosen], votes["single"][chosen], votes["observed"][chosen],
                                 votes["totals"][chosen], [f"galaxy {i}" for i in range(6)], "smooth") == path
    assert_png(path)


def test_distributions(tmp_path, votes):
    predicted_k = np.round(votes["rho"] * votes["totals"]).astype(int)
    path = tmp_path / "distributions.png"
    assert plot_distributions(path, votes["rho"], votes["observed"] / votes["totals"], predicted_k,
                              votes["observed"], "smooth or featured") == path
    assert_png(path)


@pytest.mark.parametrize("answers", [["smooth", "featured"], ["smooth", "featured", "artifact"]])
def test_roc_and_confusion(tmp_path, answers):
    rng = np.random.default_rng(1)
    scores = rng.dirichlet(np.ones(len(answers)), GALAXIES)
    majority = np.argmax(scores + rng.normal(0, 0.2, scores.shape), axis=1)
    roc, confusion = tmp_path / "roc" / "roc.png", tmp_path / "confusion" / "confusion.png"
    roc.parent.mkdir()
    confusion.parent.mkdir()
    assert plot_roc(roc, scores, majority, answers, "roc") == roc
    assert plot_confusion(confusion, np.argmax(scores, axis=1), majority, answers, "confusion") == confusion
    assert_png(roc)
    assert_png(confusion)


def test_auc_is_one_for_separable_scores_and_near_half_for_random():
    rng = np.random.default_rng(2)
    majority = rng.integers(0, 3, 2000)
    separable = np.eye(3)[majority] * 0.5 + rng.uniform(0, 0.4, (2000, 3))
    assert majority_auc(separable, majority, ["a", "b", "c"]) == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})
    random = majority_auc(rng.uniform(size=(2000, 3)), majority, ["a", "b", "c"])
    assert all(abs(auc - 0.5) < 0.05 for auc in random.values())
    assert list(majority_auc(separable[:, :2], np.where(majority == 0, 0, 1), ["yes", "no"])) == ["yes"]


def test_roc_with_one_class_still_writes_a_figure(tmp_path):
    scores = np.random.default_rng(3).uniform(size=(GALAXIES, 2))
    majority = np.zeros(GALAXIES, dtype=int)
    assert majority_auc(scores, majority, ["bar", "no bar"]) == {}
    assert_png(plot_roc(tmp_path / "roc.png", scores, majority, ["bar", "no bar"], "bar"))


def test_zero_galaxies_is_refused(tmp_path):
    empty, answers = np.zeros((0, 2)), ["smooth", "featured"]
    nothing = np.zeros(0, dtype=int)
    with pytest.raises(ValueError, match="no galaxies"):
        plot_roc(tmp_path / "roc.png", empty, nothing, answers, "roc")
    with pytest.raises(ValueError, match="no galaxies"):
        plot_confusion(tmp_path / "confusion.png", nothing, nothing, answers, "confusion")
    with pytest.raises(ValueError, match="no galaxies"):
        plot_count_posteriors(tmp_path / "posteriors.png", empty, empty, nothing, nothing, [], "empty")
    with pytest.raises(ValueError, match="no galaxies"):
        plot_distributions(tmp_path / "distributions.png", nothing, nothing, nothing, nothing, "empty")
    with pytest.raises(ValueError, match="no galaxies"):
        plot_coverage(tmp_path / "coverage.png", np.zeros(0), {}, nothing, "empty")
    assert list(tmp_path.iterdir()) == []
