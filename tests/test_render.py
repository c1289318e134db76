"""The renderer: survey colour mappings, colours that survive them, rings, dust lanes and per-galaxy looks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.visualization import make_lupton_rgb

from galzoo_tf.sim import render
from galzoo_tf.sim.perception import seen_probabilities
from galzoo_tf.sim.population import draw_population
from galzoo_tf.sim.realism import bright_twins, measure


def test_sdss_mapping_is_astropys_lupton_asinh_and_keeps_colours() -> None:
    rng = np.random.default_rng(0)
    bands = rng.uniform(0, 0.2, size=(3, 8, 8))  # g, r, i, faint enough that no pixel saturates
    scales, offset, q = (1.8, 1.0, 0.7), 0.02, 20.0
    g, r, i = (band * scale + offset for band, scale in zip(bands, scales, strict=True))
    rendered = render.to_rgb(bands, scales, offset, q)
    np.testing.assert_array_equal(rendered, make_lupton_rgb(i, r, g, minimum=0, stretch=1 / np.sqrt(q), Q=np.sqrt(q)))
    bright = rendered[..., 1] > 60  # colour ratios survive the stretch (to within 8-bit rounding)
    np.testing.assert_allclose(rendered[bright][:, 2] / rendered[bright][:, 1], (g / r)[bright], rtol=0.03)
    grey = render.to_rgb(np.full((3, 2, 2), 0.5) / np.array(scales)[:, None, None], scales, offset, q)
    assert len(np.unique(grey)) == 1


def test_decals_mapping_puts_an_empty_sky_at_its_grey_and_is_per_band() -> None:
    sky = render.decals_rgb(np.zeros((3, 4, 4)), (0.008, 0.014, 0.019))
    expected = -np.arcsinh(-0.5) / (np.arcsinh(300) - np.arcsinh(-0.5)) * 255
    assert abs(int(sky[0, 0, 0]) - expected) <= 1
    only_g = render.decals_rgb(np.array([np.full((2, 2), 0.1), np.zeros((2, 2)), np.zeros((2, 2))]),
                               (0.008, 0.014, 0.019))
    assert only_g[0, 0, 2] > only_g[0, 0, 1] == only_g[0, 0, 0]  # g shows in blue alone


def test_rendered_bulges_are_redder_than_their_disks() -> None:
    """Each bright face-on disk with a 40 % bulge gets bluer outwards than its elliptical twin (same look and
    noise), colour measured after the stretch as the realism report measures real images."""
    gradients = {kind: np.array([measure(render.render_galaxy(g, "sdss"))["colour_gradient"]
                                 for g in table.to_dict("records")]) for kind, table in bright_twins(6).items()}
    difference = gradients["disk, 40 % bulge"] - gradients["elliptical"]
    assert difference.max() < 0, difference
    assert np.median(difference) < -0.02, difference


def _one(kind: str = "disk", **changes) -> dict:
    galaxies = draw_population(400, np.random.default_rng(3))
    galaxy = galaxies[galaxies["kind"] == kind].iloc[0].to_dict()
    galaxy.update(dict(magnitude=14.0, neighbours=0, field_stars=0, survey="sdss"), **changes)
    return galaxy


def test_a_dust_lane_darkens_and_reddens_the_midplane_of_an_edge_on_disk() -> None:
    edge_on = dict(inclination=88.0, disk_axis_ratio=0.12, position_angle=0.0, bulge_to_total=0.2, arms=0,
                   bar_strength=0.0, ring_strength=0.0, disk_radius=6.0, r_e_arcsec=6.0)
    camera, quiet = render.CAMERAS["sdss"], render.Look(1.2, 1e-6, (1.0, 1.0, 1.0), 1.0, 1.0, 0)
    rng = np.random.default_rng(0)
    clear, _ = render.noisy_bands(_one(**edge_on, dust_depth=0.0), "sdss", quiet, rng)
    dusty, _ = render.noisy_bands(_one(**edge_on, dust_depth=0.8), "sdss", quiet, np.random.default_rng(0))
    centre = camera.size // 2
    midplane = (slice(centre - 1, centre + 2), slice(centre - 40, centre + 40))
    g_dimming, i_dimming = (dusty[b][midplane].sum() / clear[b][midplane].sum() for b in (0, 2))
    assert g_dimming < i_dimming < 0.95


def test_a_ring_is_a_bump_in_the_radial_profile_where_it_was_put() -> None:
    frame = render.Frame(render.seeing_psf(1.0), 128, 0.3)
    galaxy = _one(disk_axis_ratio=1.0, ring_radius=2.0, disk_radius=5.0)
    image = render.ring(galaxy, frame)
    x, y = frame.coordinates()
    radius = np.hypot(x, y)
    profile = [image[(radius > r - 0.5) & (radius <= r + 0.5)].mean() for r in np.arange(1, 18)]
    assert abs(1 + int(np.argmax(profile)) - 10) <= 1  # 2 disk radii of 5": a peak at 10"


def test_volunteers_see_the_rings_and_dust_that_are_drawn() -> None:
    galaxies = draw_population(3000, np.random.default_rng(5))
    seen = seen_probabilities(galaxies)
    ringed = galaxies["ring_strength"].to_numpy() > 0.5
    assert ringed.any()
    ring_share = seen["odd_feature"][:, 0]
    assert ring_share[ringed].min() > ring_share[galaxies["ring_strength"].to_numpy() == 0].max()
    assert seen["odd"][ringed, 0].mean() > 3 * seen["odd"][galaxies["kind"] == "elliptical", 0].mean()


@pytest.mark.parametrize("survey", ["sdss", "decals"])
def test_each_galaxy_draws_its_own_look_from_its_own_seed(survey: str) -> None:
    galaxy = _one(survey=survey)
    np.testing.assert_array_equal(render.render_galaxy(galaxy, survey), render.render_galaxy(dict(galaxy), survey))
    looks = {render.draw_look(render.CAMERAS[survey], np.random.default_rng(seed), survey) for seed in range(20)}
    assert len({look.jpeg_quality for look in looks}) > 5 and len({look.seeing for look in looks}) == 20
