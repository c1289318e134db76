"""The synthetic universe: deterministic records, consistent votes, truth in range, rho that follows the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from PIL import Image
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data import records
from galzoo_tf.data.prepare import PrepareOptions, write_records
from galzoo_tf.data.sources.synthetic import load_synthetic
from galzoo_tf.schema import load_schema
from galzoo_tf.sim.perception import answer_probabilities
from galzoo_tf.sim.population import draw_population
from galzoo_tf.sim.statistics import real_vote_counts, vote_statistics
from galzoo_tf.sim.volunteers import simulate_votes

from conftest import needs_shared

SCHEMA = load_schema("gz2")


@pytest.fixture(scope="module")
def synthetic_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "records"
    write_records(load_synthetic(36, seed=3), out, PrepareOptions(test_size=6, shard_size=10, seed=3), workers=2)
    return out


def test_same_seed_gives_the_same_bytes_whatever_the_worker_count(synthetic_records, tmp_path):
    out = tmp_path / "in-process"
    write_records(load_synthetic(36, seed=3), out, PrepareOptions(test_size=6, shard_size=10, seed=3), workers=0)
    assert records.read_manifest(out)["shards"] == records.read_manifest(synthetic_records)["shards"]
    other = tmp_path / "other-seed"
    write_records(load_synthetic(36, seed=4), other, PrepareOptions(test_size=6, shard_size=10, seed=3), workers=0)
    assert records.read_manifest(other)["shards"] != records.read_manifest(synthetic_records)["shards"]


def test_records_parse_like_gz2_and_every_count_is_consistent_with_the_tree(synthetic_records):
    got = [{k: v.numpy() for k, v in r.items()} for r in records.read_records(synthetic_records)]
    assert len(got) == 36
    for record in got:
        assert record["image"].shape == (256, 256, 3) and record["image"].dtype == np.uint8
        for question in SCHEMA.questions:
            total = record[SCHEMA.total_key(question)]
            assert total == sum(record[SCHEMA.count_key(a)] for a in question.answers)
            parents = SCHEMA.parents(question.name)
            if parents:
                assert total == sum(record[SCHEMA.count_key(a)] for a in parents), question.name
        assert 15 <= record["smooth/total"] <= 70


def test_truth_is_present_and_in_range(synthetic_records):
    for r in records.read_records(synthetic_records):
        truth = {k: float(v) for k, v in r.items() if k.startswith("truth/")}
        assert 0 <= truth["truth/bulge_to_total"] <= 1
        assert truth["truth/r_e_arcsec"] > 0 or truth["truth/star"] + truth["truth/artifact"] == 1
        assert truth["truth/flux"] > 0 and 13 < truth["truth/magnitude"] <= 17.0
        assert 0 < truth["truth/axis_ratio"] <= 1 and 0 <= truth["truth/inclination_deg"] <= 90
        assert 0 <= truth["truth/bar_strength"] <= 1 and truth["truth/arms"] in range(7)
        assert (truth["truth/pitch_deg"] > 0) == (truth["truth/arms"] > 0)
        assert {truth["truth/merger"], truth["truth/star"], truth["truth/artifact"]} <= {0, 1}
        for question in SCHEMA.questions:
            rho = [truth[f"truth/rho/{a.key}"] for a in question.answers]
            assert min(rho) > 0 and sum(rho) == pytest.approx(1, abs=1e-5)


def matched(galaxies: pd.DataFrame, **changes) -> pd.DataFrame:
    return galaxies.assign(**changes)


@pytest.fixture(scope="module")
def disks():
    galaxies = draw_population(3000, np.random.default_rng(0))
    return galaxies[(galaxies["kind"] == "disk") & (galaxies["inclination"] < 60)].reset_index(drop=True)


def test_barred_galaxies_have_higher_bar_rho_than_unbarred_twins(disks):
    barred = answer_probabilities(matched(disks, bar_strength=0.8), SCHEMA)["bar"][:, 0]
    unbarred = answer_probabilities(matched(disks, bar_strength=0.0), SCHEMA)["bar"][:, 0]
    assert (barred > unbarred).all()
    assert barred.mean() - unbarred.mean() > 0.3


def test_small_faint_galaxies_have_less_extreme_rho_than_large_bright_twins(disks):
    def entropy(probabilities: np.ndarray) -> np.ndarray:
        return -(probabilities * np.log(probabilities)).sum(axis=1)

    small = matched(disks, r_e_arcsec=1.4, magnitude=16.9)
    large = matched(disks, r_e_arcsec=6.0, magnitude=14.5)
    for question in ("smooth", "bar", "spiral", "bulge"):
        small_rho = answer_probabilities(small, SCHEMA)[question]
        large_rho = answer_probabilities(large, SCHEMA)[question]
        assert entropy(small_rho).mean() > entropy(large_rho).mean() + 0.1, question
        assert np.abs(small_rho - 0.5).max(axis=1).mean() < np.abs(large_rho - 0.5).max(axis=1).mean()


def test_overdispersion_widens_the_counts_but_keeps_their_mean():
    rng = np.random.default_rng(0)
    n = 20000
    rho = {q.name: np.tile(np.full(len(q.answers), 1 / len(q.answers)), (n, 1)) for q in SCHEMA.questions}
    plain = simulate_votes(SCHEMA, rho, np.full(n, 40), rng)["smooth/smooth/count"]
    wide = simulate_votes(SCHEMA, rho, np.full(n, 40), rng, overdispersion=0.2)["smooth/smooth/count"]
    assert plain.mean() == pytest.approx(40 / 3, rel=0.02) and wide.mean() == pytest.approx(40 / 3, rel=0.02)
    binomial_variance = 40 * (1 / 3) * (2 / 3)
    assert plain.var() == pytest.approx(binomial_variance, rel=0.05)
    assert wide.var() == pytest.approx(binomial_variance * (40 * 0.2 + 1) / 1.2, rel=0.1)


def test_hsc_survey_gives_single_band_float_images_whose_flux_follows_the_truth(tmp_path):
    out = tmp_path / "hsc"
    write_records(load_synthetic(16, seed=1, survey="hsc"), out, PrepareOptions(test_size=0, val_fraction=0),
                  workers=0)
    assert records.read_manifest(out)["image"] == {"shape": [239, 239, 1], "dtype": "float32", "encoding": "raw"}
    measured, true = [], []
    for r in records.read_records(out):
        image = r["image"].numpy()
        assert np.isfinite(image).all()
        centre = image[80:160, 80:160, 0]  # the main galaxy, mostly clear of neighbours
        measured.append(centre.sum())
        true.append(float(r["truth/flux"]))
    assert np.corrcoef(np.log(np.clip(measured, 1, None)), np.log(true))[0, 1] > 0.8


def test_hsc_population_matches_gampen_table_1_within_sampling_error():
    """Ghosh et al. (2022) Table 1: 75 % bulge + disk, 12.5 % pure disks and 12.5 % pure bulges; R_e 0.1-5" (bulges
    of two-component galaxies 0.1-3"), flux 1e3-5e6 nJy, axis ratios 0.25-1, all uniform; bulge twisted <= 15 deg."""
    n = 20_000
    galaxies = draw_population(n, np.random.default_rng(4), "hsc")
    bt = galaxies["bulge_to_total"].to_numpy()
    double, pure_disk, pure_bulge = (bt > 0) & (bt < 1), bt == 0, bt == 1
    binomial_error = 4 * np.sqrt(0.25 * 0.75 / n)  # 4 sigma
    assert abs(double.mean() - 0.75) < binomial_error
    assert abs(pure_disk.mean() - 0.125) < binomial_error and abs(pure_bulge.mean() - 0.125) < binomial_error
    flux = 10 ** (-0.4 * (galaxies["magnitude"] - 31.4))
    uniform = {"flux": (flux, 1e3, 5e6), "disk R_e": (galaxies.loc[~pure_bulge, "disk_radius"], 0.1, 5.0),
               "bulge R_e": (galaxies.loc[double, "bulge_radius"], 0.1, 3.0),
               "single bulge R_e": (galaxies.loc[pure_bulge, "bulge_radius"], 0.1, 5.0),
               "disk q": (galaxies.loc[~pure_bulge, "disk_axis_ratio"], 0.25, 1.0),
               "bulge q": (galaxies["bulge_axis_ratio"], 0.25, 1.0), "L_B/L_T": (bt[double], 0.0, 1.0)}
    for name, (values, low, high) in uniform.items():
        assert scipy.stats.kstest(values, "uniform", (low, high - low)).pvalue > 1e-3, name
    assert galaxies.loc[double, "bulge_twist"].abs().max() <= 15 and (galaxies.loc[~double, "bulge_twist"] == 0).all()
    assert ((galaxies["r_e_arcsec"] >= 0.1) & (galaxies["r_e_arcsec"] <= 5.0)).all()
    single_disk_sizes = galaxies.loc[pure_disk, ["r_e_arcsec", "disk_radius"]].to_numpy()
    np.testing.assert_allclose(single_disk_sizes[:, 0], single_disk_sizes[:, 1], rtol=1e-3)
    assert (galaxies["arms"] == 0).all()
    assert (galaxies["neighbours"] == 0).all() and (galaxies["bar_strength"] == 0).all()
    old = draw_population(2000, np.random.default_rng(4), "hsc", "magnitude-limited")
    assert old["magnitude"].between(17.0, 21.0).all() and (old["kind"] == "elliptical").mean() > 0.3


def test_a_survey_mix_draws_each_galaxy_from_its_own_surveys_sample_and_one_survey_draws_as_before():
    mixed = load_synthetic(400, seed=3, survey="sdss+decals").table
    assert set(mixed["survey"]) == {"sdss", "decals"} and 0.4 < (mixed["survey"] == "sdss").mean() < 0.6
    for survey, (bright, faint) in {"sdss": (13.5, 17.0), "decals": (14.0, 18.5)}.items():
        magnitude = mixed.loc[mixed["survey"] == survey, "magnitude"]
        assert magnitude.between(bright, faint).all() and magnitude.max() > faint - 0.5, survey
    alone = load_synthetic(50, seed=3, survey="sdss").table
    drawn = draw_population(50, np.random.default_rng(3), "sdss")
    assert np.array_equal(alone["noise_seed"], drawn["noise_seed"])


def test_a_mix_of_surveys_with_different_image_shapes_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(app, ["prepare", "synthetic", "--n", "4", "--survey", "sdss+hsc",
                                      "--out", str(tmp_path / "mix")])
    assert result.exit_code != 0 and "same image shape" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "mix").exists()


def test_simulated_vote_statistics_resemble_real_gz2():
    real_path = needs_shared("data", "gz2_stripe82_counts", "table5.csv.gz")
    real = vote_statistics(real_vote_counts(real_path, SCHEMA), SCHEMA)
    catalogue = load_synthetic(8000, seed=0)
    simulated = vote_statistics(catalogue.table[catalogue.int_features], SCHEMA)
    for question in ("edgeon", "bar", "spiral", "odd", "rounded"):
        assert simulated["median_votes_ratio"][question] == pytest.approx(
            real["median_votes_ratio"][question], abs=0.08), question
    for key in ("smooth/features", "edgeon/yes", "bar/bar"):
        real_q, sim_q = (np.array(s["fraction_quantiles"][key]["quantiles"]) for s in (real, simulated))
        assert np.abs(real_q - sim_q).max() < 0.15, key
    assert simulated["median_votes"]["smooth"] == pytest.approx(44, abs=3)
    assert simulated["median_votes"]["bar"] == pytest.approx(6, abs=3)


def test_cli_synthetic_writes_records_and_a_montage(tmp_path):
    out = tmp_path / "synthetic"
    result = CliRunner().invoke(app, ["prepare", "synthetic", "--n", "14", "--out", str(out), "--workers", "0",
                                      "--test-size", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    manifest = records.read_manifest(out)
    assert manifest["source"] == "synthetic" and manifest["total"] == 14
    assert manifest["inputs"]["simulation"] == {"survey": "sdss", "n": 14, "seed": 5, "overdispersion": 0.0,
                                                "population": "magnitude-limited"}
    with Image.open(out / "montage.png") as picture:
        assert picture.width > 600 and picture.height > 200


def test_prepare_without_a_source_lists_the_sources():
    result = CliRunner().invoke(app, ["prepare"])
    assert result.exit_code == 0
    assert "synthetic" in result.output and "gz2" in result.output and "folder" in result.output
    assert "galzoo prepare synthetic" in result.output
