"""The realism statistics on images whose answers are known analytically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from galzoo_tf.sim.realism import STATISTICS, compare, figure, image_statistics, measure

WIDTH = 128


def blob(sigma: float, colours: tuple[float, float, float] = (1.0, 1.0, 1.0), offset: float = 0.0,
         outer: tuple[float, tuple[float, float, float]] | None = None) -> np.ndarray:
    """A circular Gaussian at the frame centre (shifted by ``offset`` px in x), 0.5 peak, per-channel scale;
    ``outer`` adds a second, wider Gaussian (sigma, colours)."""
    centre = (WIDTH - 1) / 2
    y, x = np.mgrid[:WIDTH, :WIDTH]
    image = np.zeros((WIDTH, WIDTH, 3))
    for width, scale, shift in [(sigma, colours, offset)] + ([(outer[0], outer[1], 0.0)] if outer else []):
        profile = 0.5 * np.exp(-((x - centre - shift) ** 2 + (y - centre) ** 2) / (2 * width ** 2))
        image += profile[..., None] * np.asarray(scale)
    return image


def test_size_concentration_and_background_of_a_gaussian() -> None:
    sigma, noise = 6.0, 0.005  # the profile sums 40,000 pixels: its noise sets how tight this can be
    image = 0.1 + blob(sigma) + np.random.default_rng(0).normal(0, noise, (WIDTH, WIDTH, 1))
    stats = measure(image)
    assert stats["galaxy_size"] * WIDTH == pytest.approx(sigma * np.sqrt(2 * np.log(2)), rel=0.05)
    # r80 / r20 of a 2-D Gaussian: sqrt(ln 5 / ln 1.25)
    assert stats["concentration"] == pytest.approx(5 * np.log10(np.sqrt(np.log(5) / np.log(1.25))), abs=0.1)
    assert stats["background_rms"] == pytest.approx(noise, rel=0.1)
    assert stats["sky_level"] == pytest.approx(0.1, abs=0.005)
    assert stats["background_chroma"] == pytest.approx(0, abs=1e-9)  # grey noise has no colour


def test_size_holds_when_the_stretch_floors_the_noise_at_zero() -> None:
    """Simulated cutouts floor the sky at black; the sky's skewed residual must not inflate the profile."""
    sigma = 6.0
    floored = np.clip(blob(sigma) + np.random.default_rng(2).normal(0, 0.03, (WIDTH, WIDTH, 3)), 0, None)
    assert measure(floored)["galaxy_size"] * WIDTH == pytest.approx(sigma * np.sqrt(2 * np.log(2)), rel=0.1)


def test_a_blank_frame_gives_nan_not_an_error() -> None:
    stats = measure(np.zeros((WIDTH, WIDTH, 3)))
    assert np.isnan([stats[k] for k in ("galaxy_size", "concentration", "colour_centre", "asymmetry")]).all()
    assert stats["background_rms"] == 0


def test_coloured_noise_shows_in_the_chroma() -> None:
    noisy = blob(6) + np.random.default_rng(1).normal(0, 0.03, (WIDTH, WIDTH, 3))
    assert measure(noisy)["background_chroma"] == pytest.approx(0.03 * np.sqrt(2), rel=0.15)


def test_asymmetry_is_zero_when_symmetric_and_grows_off_centre() -> None:
    symmetric = measure(blob(6))["asymmetry"]
    lopsided = [measure(blob(6) + blob(3, offset=offset))["asymmetry"] for offset in (4, 10)]
    assert symmetric < 1e-9
    assert 0.05 < lopsided[0] < lopsided[1]


def test_colour_gradient_sign_follows_a_blue_disk_round_a_red_bulge() -> None:
    red_bulge_blue_disk = blob(3, colours=(1.0, 0.8, 0.5), outer=(14, (0.3, 0.4, 0.6)))
    stats = measure(red_bulge_blue_disk)
    assert stats["colour_centre"] > stats["colour_outskirts"]  # -2.5 log10(B/G): larger is redder
    assert stats["colour_gradient"] < 0
    same_colour = measure(blob(3, outer=(14, (1.0, 1.0, 1.0))))
    assert same_colour["colour_gradient"] == pytest.approx(0, abs=1e-9)


def test_uint8_and_float_give_the_same_statistics() -> None:
    image = np.clip(0.05 + blob(5, colours=(1.0, 0.9, 0.7)), 0, 1)
    as_bytes = np.round(image * 255).astype(np.uint8)
    floats, ints = measure(as_bytes / 255), measure(as_bytes)
    assert floats == pytest.approx(ints)


def test_measure_refuses_a_non_rgb_image() -> None:
    with pytest.raises(ValueError, match="square RGB"):
        measure(np.zeros((32, 32, 1)))


def test_compare_reports_zero_distance_for_the_same_sample_and_one_for_disjoint(tmp_path: Path) -> None:
    small = image_statistics([blob(s) for s in (2.0, 2.5, 3.0, 3.5)])
    large = image_statistics([blob(s) for s in (10.0, 11.0, 12.0, 13.0)])
    report = compare({"real": small, "simulated": small.copy(), "other": large})
    assert set(report) == set(STATISTICS)
    assert report["galaxy_size"]["simulated"]["ks_to_real"] == 0
    assert report["galaxy_size"]["other"]["ks_to_real"] == 1
    assert report["galaxy_size"]["real"]["p16"] <= report["galaxy_size"]["real"]["median"]
    assert figure({"real": small, "simulated": large}, tmp_path / "realism.png").stat().st_size > 0
    blank = image_statistics([np.zeros((WIDTH, WIDTH, 3))])
    assert compare({"real": blank, "simulated": small})["galaxy_size"]["real"] == {}
