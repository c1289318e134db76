"""Science tools: the bias report, expert-label rescaling and population fractions, on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from galzoo_tf.errors import BadInputError
from galzoo_tf.science.bias import bias_report, image_properties, plot_bias, surprise
from galzoo_tf.science.expert import fit_expert, read_expert_labels
from galzoo_tf.science.fraction import FractionOptions, feature_probabilities, fraction_samples, summarise_fraction


def _blob(sigma_x: float, sigma_y: float, amplitude: float, size: int = 64) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    image = 10 + amplitude * np.exp(-0.5 * ((x / sigma_x) ** 2 + (y / sigma_y) ** 2))
    return np.repeat(image[..., None], 3, axis=-1)


def test_image_properties_measure_size_shape_and_brightness():
    images = np.stack([_blob(3, 3, 100), _blob(6, 6, 100), _blob(6, 3, 100), _blob(6, 6, 20)])
    found = image_properties(images)
    assert found["size_px"][0] == pytest.approx(np.sqrt(2) * 3, rel=0.03)  # rms radius of a round Gaussian
    assert found["size_px"][1] == pytest.approx(np.sqrt(2) * 6, rel=0.03)
    assert found["axis_ratio"][2] == pytest.approx(0.5, abs=0.03)
    assert found["axis_ratio"][1] == pytest.approx(1, abs=0.03)
    assert found["brightness"][1] - found["brightness"][3] == pytest.approx(np.log10(5), abs=0.02)


def test_surprise_is_the_negative_log_likelihood_of_the_observed_count():
    probabilities = binom.pmf(np.arange(11)[None], 10, np.array([[0.2], [0.7]]))
    assert surprise(probabilities, np.array([2, 9])) == pytest.approx(-binom.logpmf([2, 9], 10, [0.2, 0.7]))


def test_bias_report_finds_that_size_and_brightness_matter(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    properties = {"size_px": rng.uniform(2, 30, n), "brightness": rng.uniform(2, 5, n),
                  "axis_ratio": rng.uniform(0.2, 1, n), "observed_fraction": rng.uniform(0, 1, n)}
    # small and faint galaxies surprise the model; axis ratio and morphology do not matter here
    surprises = 3 * np.exp(-properties["size_px"] / 5) + 1.5 * (properties["brightness"] < 3) + \
        rng.normal(0, 0.3, n)
    report, fitted = bias_report(properties, surprises, seed=0)
    assert set(report["ranking"][:2]) == {"size_px", "brightness"}
    assert report["importance"]["size_px"]["mean"] > 0.2 and report["importance"]["brightness"]["mean"] > 0.2
    assert abs(report["importance"]["axis_ratio"]["mean"]) < 0.02
    assert report["r2_held_out"] > 0.8
    assert plot_bias(tmp_path / "bias.png", report, fitted, "test").is_file()


def test_bias_report_refuses_too_few_galaxies():
    with pytest.raises(BadInputError, match="at least 40"):
        bias_report({"size_px": np.ones(10)}, np.ones(10))


def _simulated_bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vote fractions and an expert's label (bar strength above 0.3) for a simulated population."""
    rng = np.random.default_rng(seed)
    strength = np.where(rng.random(n) < 0.4, rng.uniform(0, 1, n), 0)
    fraction = np.clip(0.05 + 0.45 * strength + rng.normal(0, 0.08, n), 0, 1)  # volunteers under-call bars
    return fraction, (strength > 0.3).astype(int)


def test_rescaled_probabilities_count_the_experts_bars_and_raw_fractions_do_not():
    fraction, labels = _simulated_bars(4000, seed=1)
    mapping, report = fit_expert(fraction, labels, "strong_bar", "bar", "bar", seed=0)
    rescaled, raw = report["positives"]["rescaled"], report["positives"]["raw_fraction"]
    assert rescaled["within_poisson_error"], rescaled
    assert not raw["within_poisson_error"] and abs(raw["expected"] - raw["actual"]) > 5 * raw["poisson_error"]
    assert mapping.coefficient > 0 and report["roc_auc"] > 0.9
    points = report["calibration_curve"]["rescaled"]
    assert np.max(np.abs(np.subtract(points["predicted"], points["observed"]))) < 0.1


def test_expert_labels_are_checked(tmp_path):
    path = tmp_path / "expert.csv"
    path.write_text("id,barred\na,1\nb,yes\nc,0\n")
    assert read_expert_labels(path, "barred").to_dict() == {"a": 1, "b": 1, "c": 0}
    with pytest.raises(BadInputError, match="no 'strong' column"):
        read_expert_labels(path, "strong")
    path.write_text("id,barred\na,1\nb,maybe\n")
    with pytest.raises(BadInputError, match="row 3"):
        read_expert_labels(path, "barred")
    with pytest.raises(BadInputError, match="both classes"):
        fit_expert(np.linspace(0, 1, 50), np.ones(50), "barred", "bar", "bar")


def test_feature_probability_is_the_binomial_tail():
    rho, totals = np.array([[0.2, 0.5], [0.7, 0.9]]), np.array([10, 4])
    expected = np.array([[binom.sf(4, 10, 0.2), binom.sf(4, 10, 0.5)], [binom.sf(1, 4, 0.7), binom.sf(1, 4, 0.9)]])
    assert feature_probabilities(rho, totals, 0.5) == pytest.approx(expected)


def test_fraction_interval_covers_the_true_fraction_68_percent_of_the_time():
    rng = np.random.default_rng(3)
    inside = []
    for repeat in range(300):
        probabilities = rng.beta(0.4, 4, 400)
        truth = (rng.random(400) < probabilities).mean()
        summary = summarise_fraction(fraction_samples(probabilities, FractionOptions(draws=1000, seed=repeat)),
                                     naive=float((probabilities > 0.5).mean()), galaxies=400)
        low, high = summary["intervals"]["68%"]
        inside.append(low <= truth <= high)
    assert 0.62 <= np.mean(inside) <= 0.76, np.mean(inside)


def test_fraction_uses_each_galaxys_posterior_samples():
    certain = np.tile([0.0, 1.0], (500, 1))  # every galaxy: half its samples say no, half yes
    samples = fraction_samples(certain, FractionOptions(draws=2000, seed=0))
    assert samples.mean() == pytest.approx(0.5, abs=0.01)
    assert samples.std() == pytest.approx(0.5 / np.sqrt(500), rel=0.1)
    with pytest.raises(BadInputError, match="no galaxies"):
        fraction_samples(np.zeros((0,)), FractionOptions())


def test_the_fraction_of_a_csv_catalogue_does_not_import_tensorflow(tmp_path):
    """`galzoo fraction` on a CSV catalogue (summary, provenance and histogram) starts without TensorFlow."""
    import json
    import subprocess
    import sys

    import pandas as pd

    catalogue, out = tmp_path / "catalogue.csv", tmp_path / "fraction.json"
    pd.DataFrame({"id": ["a", "b", "c"], "bar_votes": [10, 12, 8], "bar_bar_rho_mean": [0.2, 0.6, 0.9],
                  "bar_bar_rho_samples": ["0.1 0.3", "0.5 0.7", "0.8 1.0"],
                  "bar_bar_fraction": [0.2, 0.6, 0.9]}).to_csv(catalogue, index=False)
    code = ("import sys\n"
            "from galzoo_tf.science.fraction import FractionOptions, population_fraction\n"
            f"result = population_fraction({str(catalogue)!r}, answer='bar_bar', options=FractionOptions(draws=200), "
            f"out={str(out)!r})\n"
            "assert result.histogram.is_file(), result\n"
            "assert 'tensorflow' not in sys.modules, [m for m in sys.modules if m.startswith('tensorflow')][:5]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["galaxies"] == 3 and summary["input"]["sha256"] and "bar_bar" in summary["feature"]


def test_calibrate_bias_and_expert_then_predict_and_fraction_through_the_cli(tiny_bar, tmp_path):
    """The science tools end to end on simulated records: the 'expert' says barred when the true bar is strong."""
    import json
    import shutil

    from astropy.table import Table
    from typer.testing import CliRunner

    from galzoo_cli.main import app
    from galzoo_tf.data.inputs import RecordSource

    records, trained = tiny_bar
    model = tmp_path / "bar"
    shutil.copytree(trained, model)  # calibrate stores the mapping in galzoo.json: keep the shared model clean
    truth = RecordSource(records, keys=["truth/bar_strength"]).columns()
    experts = tmp_path / "expert.csv"
    Table({"id": truth["id"], "strong_bar": (truth["truth/bar_strength"] > 0.2).astype(int)}).write(experts)
    runner = CliRunner()
    done = runner.invoke(app, ["calibrate", "--model", str(model), "--data", str(records), "--out",
                               str(tmp_path / "cal"), "--split", "train", "--passes", "5", "--no-tta", "--bias",
                               "--expert-labels", str(experts), "--expert-column", "strong_bar"])
    assert done.exit_code == 0, done.output
    report = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    bias = report["bias"]
    assert {"size_px", "brightness", "axis_ratio", "signal_to_noise", "observed_fraction", "true_rho",
            "true_size_arcsec", "true_magnitude"} <= set(bias["importance"])
    assert bias["spearman_measured_vs_true"]["size_px vs true_size_arcsec"] > 0.3  # the image size tracks the truth
    assert (tmp_path / "cal" / "bias.png").is_file() and (tmp_path / "cal" / "expert-strong_bar.png").is_file()
    assert json.loads((model / "galzoo.json").read_text())["expert"]["strong_bar"]["question"] == "bar"
    done = runner.invoke(app, ["predict", "--model", str(model), "--data", str(records), "--split", "test",
                               "--out", str(tmp_path / "test.fits"), "--passes", "5", "--save-samples"])
    assert done.exit_code == 0, done.output
    catalogue = Table.read(tmp_path / "test.fits")
    probability = np.asarray(catalogue["expert_strong_bar_probability"])
    assert len(probability) == 40 and ((probability > 0) & (probability < 1)).all()
    for option in (["--probability-column", "expert_strong_bar_probability"], ["--answer", "bar_bar"]):
        done = runner.invoke(app, ["fraction", "--catalogue", str(tmp_path / "test.fits"), *option, "--out",
                                   str(tmp_path / "fraction.json")])
        assert done.exit_code == 0, done.output
        summary = json.loads((tmp_path / "fraction.json").read_text())
        low, high = summary["intervals"]["95%"]
        assert 0 <= low <= summary["mean"] <= high <= 1 and summary["galaxies"] == 40
    done = runner.invoke(app, ["fraction", "--catalogue", str(tmp_path / "test.fits"), "--answer", "spiral_spiral"])
    assert done.exit_code == 2 and "bar_bar" in done.output
