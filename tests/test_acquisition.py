"""Acquisition: BALD mutual information, baselines, the streamed top n, and `galzoo acquire` on a pool."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from galzoo_tf.active.acquire import AcquireOptions, RunningTop, acquire, labelled_ids, read_exclusions
from galzoo_tf.active.scores import (
    Scorer,
    expected_predictive_information_gain,
    mutual_information,
    predictive_entropy,
    random_scores,
    rho_variance,
)
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.registry import load_model


def direct_mutual_information(rho: np.ndarray, n: int) -> np.ndarray:
    """Eq. 22-24 written out with scipy's binomial pmf, one galaxy at a time."""
    values = []
    for samples in rho:
        pmf = np.array([binom.pmf(np.arange(n + 1), n, r) for r in samples])
        mixture = pmf.mean(axis=0)

        def entropy(p):
            p = p[p > 0]
            return -(p * np.log(p)).sum()

        values.append(entropy(mixture) - np.mean([entropy(p) for p in pmf]))
    return np.array(values)


def test_mutual_information_matches_a_direct_computation():
    rho = np.random.default_rng(0).beta(0.7, 1.5, size=(12, 30))
    for n in (1, 7, 40):
        np.testing.assert_allclose(mutual_information(rho, n), direct_mutual_information(rho, n), rtol=1e-9,
                                   atol=1e-12)


def direct_epig(rho: np.ndarray, n: int, target_rho: np.ndarray) -> np.ndarray:
    """I[k; y*] from the joint table p(k, y*) = mean_t Bin(k | n, rho_t) Bernoulli(y* | rho*_t), written out."""
    values = []
    for samples in rho:
        pmf = np.array([binom.pmf(np.arange(n + 1), n, r) for r in samples])  # (T, k)
        per_target = []
        for target in target_rho:
            joint = np.stack([(pmf * (1 - target)[:, None]).mean(0), (pmf * target[:, None]).mean(0)], axis=1)
            outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
            mask = joint > 0
            per_target.append((joint[mask] * np.log(joint[mask] / outer[mask])).sum())
        values.append(np.mean(per_target))
    return np.array(values)


def test_epig_matches_a_direct_computation_and_never_exceeds_bald():
    rng = np.random.default_rng(5)
    rho, targets = rng.beta(0.7, 1.5, size=(9, 20)), rng.beta(0.7, 1.5, size=(4, 20))
    for n in (1, 6):
        epig = expected_predictive_information_gain(rho, n, targets)
        np.testing.assert_allclose(epig, direct_epig(rho, n, targets), rtol=1e-9, atol=1e-12)
        assert (epig <= mutual_information(rho, n) + 1e-12).all()  # y* depends on k only through the weights
    votes = np.array([0, 3, 0, 5, 2, 1, 0, 4, 6])
    assert (expected_predictive_information_gain(rho, votes, targets)[votes == 0] == 0).all()
    unshared = np.broadcast_to(targets.mean(axis=1, keepdims=True), targets.shape)  # the targets' rho never vary
    np.testing.assert_allclose(expected_predictive_information_gain(rho, 6, unshared), 0, atol=1e-12)


def test_the_scorer_gives_epig_from_target_samples_and_power_epig_draws_with_its_odds():
    from galzoo_tf.schema import load_schema
    from galzoo_tf.tasks.votes.heads import heads_for

    bar = heads_for(load_schema("gz2"), ["bar"])
    rng = np.random.default_rng(8)
    assert bar[0].size == 1  # a yes/no question: one logit, rho of "yes"
    logits, targets, indices = rng.normal(0, 2, (60, 16, 1)), rng.normal(0, 2, (8, 16, 1)), np.arange(60)
    epig = Scorer("epig", bar, {"bar": 12}, {})(logits, indices, targets)
    by_hand = expected_predictive_information_gain(1 / (1 + np.exp(-logits[..., 0])), 12,
                                                   1 / (1 + np.exp(-targets[..., 0])))
    np.testing.assert_allclose(epig, by_hand, rtol=1e-5)
    top = Scorer("power-epig", bar, {"bar": 12}, {}, seed=3, power=1e6)(logits, indices, targets)
    np.testing.assert_array_equal(np.argsort(-top)[:10], np.argsort(-epig)[:10])
    with pytest.raises(ValueError, match="target galaxies"):
        Scorer("power-epig", bar, {"bar": 12}, {})(logits, indices)


def test_chunked_scoring_equals_scoring_all_galaxies_at_once(monkeypatch):
    from galzoo_tf.active import scores

    rho = np.random.default_rng(2).beta(0.7, 1.5, size=(50, 30))
    targets = np.random.default_rng(4).beta(0.7, 1.5, size=(5, 30))
    votes = np.random.default_rng(3).integers(0, 45, size=50)
    whole = (mutual_information(rho, votes), predictive_entropy(rho, votes),
             expected_predictive_information_gain(rho, votes, targets))
    monkeypatch.setattr(scores, "SCORE_CHUNK_VALUES", 7 * 35 * 45)  # chunks of 7 to 8 galaxies
    np.testing.assert_allclose(mutual_information(rho, votes), whole[0], rtol=1e-13)  # sums of other lengths
    np.testing.assert_allclose(predictive_entropy(rho, votes), whole[1], rtol=1e-13)
    np.testing.assert_allclose(expected_predictive_information_gain(rho, votes, targets), whole[2], rtol=1e-12)


def test_per_galaxy_votes_score_each_galaxy_at_its_own_n_and_zero_where_never_asked():
    rho = np.random.default_rng(4).beta(0.7, 1.5, size=(6, 30))
    votes = np.array([0, 1, 5, 0, 12, 40])
    information = mutual_information(rho, votes)
    assert information[0] == 0 and information[3] == 0 and predictive_entropy(rho, votes)[[0, 3]].max() == 0
    for i in (1, 2, 4, 5):
        assert information[i] == pytest.approx(direct_mutual_information(rho[i:i + 1], int(votes[i]))[0], rel=1e-9)


def test_expected_votes_follow_the_tree_and_bald_is_zero_where_bar_is_never_reached():
    from galzoo_tf.active.reach import expected_votes
    from galzoo_tf.schema import load_schema
    from galzoo_tf.tasks.votes.heads import heads_for, output_size

    schema = load_schema("gz2")
    heads = heads_for(schema, schema.question_names)
    rng = np.random.default_rng(6)
    logits = rng.normal(0, 2, size=(3, 20, output_size(heads)))  # passes that disagree about everything
    smooth, edgeon = (next(h for h in heads if h.question == q) for q in ("smooth", "edgeon"))
    logits[0, :, smooth.offset:smooth.offset + 3] = [12, -12, -12]  # surely smooth: never asked about a bar
    logits[1:, :, smooth.offset:smooth.offset + 3] = [-12, 12, -12]  # surely featured...
    logits[1, :, edgeon.offset], logits[2, :, edgeon.offset] = -12, 12  # ...face-on, or edge-on
    mean_rho = {h.question: h.rho(logits.astype(np.float32)).numpy().mean(axis=1) for h in heads}
    votes = expected_votes(schema, mean_rho, 40)
    assert votes["smooth"].tolist() == [40, 40, 40] and votes["bar"].tolist() == [0, 40, 0]
    assert votes["edgeon"].tolist() == [0, 40, 40] and votes["rounded"].tolist() == [40, 0, 0]
    without_bar = {q: r for q, r in mean_rho.items() if q not in ("bar", "spiral")}  # a trunk that left bar out
    reach_bar = expected_votes(schema, without_bar, 40, ["bar"])
    assert list(reach_bar) == ["bar"] and reach_bar["bar"].tolist() == [0, 40, 0]
    bar_by_tree = Scorer("bald", heads, {}, {}, tree=schema, volunteers=40, scored=("bar",))(logits, np.arange(3))
    bar_at_fixed_n = Scorer("bald", heads, {"bar": 40}, {}, scored=("bar",))(logits, np.arange(3))
    assert bar_at_fixed_n.min() > 0.05  # at one N for all, BALD would ask about the elliptical's bar
    assert bar_by_tree[0] == 0 and bar_by_tree[2] == 0 and bar_by_tree[1] == pytest.approx(bar_at_fixed_n[1])
    bar = [next(h for h in heads if h.question == "bar")]
    with pytest.raises(BadInputError, match="no head for"):
        Scorer("bald", bar, {}, {}, tree=schema, volunteers=40)(logits, np.arange(3))


def test_mutual_information_is_zero_when_every_sample_agrees():
    rho = np.repeat(np.array([[0.0], [0.03], [0.5], [0.97], [1.0]]), 30, axis=1)
    np.testing.assert_allclose(mutual_information(rho, 40), 0.0, atol=1e-12)
    assert (predictive_entropy(rho[1:4], 40) > 0.5).all()  # unsure, but no disagreement to learn from


def test_mutual_information_is_largest_when_passes_confidently_disagree():
    confident_disagreement = np.r_[np.full(15, 0.02), np.full(15, 0.98)]
    cases = np.stack([confident_disagreement,
                      np.full(30, 0.5),  # agreed uncertainty: maximum entropy, no information
                      np.linspace(0.3, 0.7, 30),  # mild disagreement
                      np.r_[np.full(15, 0.4), np.full(15, 0.6)]])
    information = mutual_information(cases, 40)
    assert information.argmax() == 0 and information[1] < 1e-12
    assert information[0] == pytest.approx(np.log(2), abs=0.01)  # one bit: which of two confident answers
    entropy = predictive_entropy(cases, 40)
    assert entropy[0] < entropy[1]  # entropy prefers the agreed 50:50 galaxy, BALD the disagreement
    assert rho_variance(cases, 40).argmax() == 0


def test_random_scores_depend_on_the_galaxy_not_the_batch():
    indices = np.arange(1000)
    whole = random_scores(7, indices)
    np.testing.assert_array_equal(np.concatenate([random_scores(7, indices[:333]), random_scores(7, indices[333:])]),
                                  whole)
    assert whole.min() >= 0 and whole.max() < 1 and abs(whole.mean() - 0.5) < 0.05
    assert not np.array_equal(whole, random_scores(8, indices))


def test_power_bald_with_a_large_exponent_is_top_n_bald_and_at_one_draws_with_odds_bald():
    from galzoo_tf.active.scores import power_keys

    information = np.random.default_rng(5).gamma(2.0, 0.1, size=400)
    indices = np.arange(400)
    top = np.argsort(-information)[:40]
    np.testing.assert_array_equal(np.argsort(-power_keys(information, 1e6, 3, indices))[:40], top)
    assert len(set(np.argsort(-power_keys(information, 1.0, 3, indices))[:40]) & set(top)) < 30  # spread out
    odds = np.array([1.0, 2.0, 0.0, 5.0])  # a single draw picks galaxy i with probability s_i / sum s
    picks = np.bincount([np.argmax(power_keys(odds, 1.0, seed, np.arange(4))) for seed in range(4000)], minlength=4)
    np.testing.assert_allclose(picks / 4000, odds / odds.sum(), atol=0.03)
    assert picks[2] == 0  # BALD 0 (a galaxy never asked) is never drawn


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(BadInputError, match="bald"):
        Scorer("greedy", [], {}, {})


def test_streamed_top_n_equals_the_full_sort():
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(5000), 3)  # many ties: broken by input order
    order = np.arange(5000)
    top = RunningTop(128)
    for start in range(0, 5000, 77):
        top.add(scores[start:start + 77], order[start:start + 77], {"id": order[start:start + 77].astype(str)})
    expected = np.lexsort((order, -scores))[:128]
    np.testing.assert_array_equal(top.order, expected)
    np.testing.assert_array_equal(top.rows["id"], expected.astype(str))
    np.testing.assert_array_equal(top.scores, scores[expected])


def test_acquire_never_picks_labelled_or_excluded_galaxies(tiny_bar, tiny_pool, tmp_path):
    records, model_dir = tiny_bar
    model = load_model(model_dir, "votes")
    labelled = labelled_ids(model)
    assert len(labelled) == 160
    pool_ids = sorted(i for b in RecordSource(tiny_pool).batches(64) for i in b.ids)
    (tmp_path / "skip.txt").write_text("\n".join(pool_ids[:10]) + "\n")
    excluded = labelled | read_exclusions([str(tmp_path / "skip.txt"), pool_ids[10]])
    options = AcquireOptions(n=30, passes=4, tta=False, batch_size=16, montage=4)
    result = acquire(model, RecordSource(tiny_pool), tmp_path / "picked.csv", options, excluded)
    picked = pd.read_csv(tmp_path / "picked.csv")
    assert len(picked) == 30 and not set(picked["id"]) & excluded
    assert list(picked["rank"]) == list(range(1, 31)) and picked["score"].is_monotonic_decreasing
    assert result.scored == 48 - 11 and result.montage.is_file()
    provenance = json.loads((tmp_path / "picked.csv.json").read_text())
    assert provenance["excluded"] == 11 and provenance["model"]["sha256"] == model.checksum()
    with pytest.raises(BadInputError, match="unlabelled"):
        acquire(model, RecordSource(records), tmp_path / "none.csv", options, labelled)
    with pytest.raises(BadInputError, match="--n"):
        acquire(model, RecordSource(tiny_pool), tmp_path / "big.csv", AcquireOptions(n=49), excluded)
    with pytest.raises(BadInputError, match="shared across galaxies"):  # the CNN's masks are per galaxy
        acquire(model, RecordSource(tiny_pool), tmp_path / "epig.csv", replace(options, strategy="epig"), excluded)


def test_acquire_from_python_refuses_labelled_galaxies_by_itself(tiny_bar, tiny_pool, tmp_path):
    """No exclusion list given: the model's own training records are still never picked."""
    records, model_dir = tiny_bar
    model = load_model(model_dir, "votes")
    options = AcquireOptions(n=5, passes=2, tta=False, batch_size=32, montage=2)
    with pytest.raises(BadInputError, match="only 0 galaxies of the pool are unlabelled"):
        acquire(model, RecordSource(records), tmp_path / "own.csv", options)
    with pytest.raises(BadInputError, match="labelled records"):
        acquire(model, RecordSource(tiny_pool), tmp_path / "x.csv", options, labelled=tmp_path / "missing")
    acquire(model, RecordSource(records), tmp_path / "other.csv", options, labelled=tiny_pool)
    assert set(pd.read_csv(tmp_path / "other.csv")["id"]) <= labelled_ids(model)  # labelled elsewhere: pickable


def test_the_same_pool_gives_the_same_list_in_any_batch_size(tiny_bar, tiny_pool, tmp_path):
    model = load_model(tiny_bar[1], "votes")
    lists = []
    for batch_size in (5, 48):
        options = AcquireOptions(n=12, passes=6, tta=True, batch_size=batch_size, montage=2)
        acquire(model, RecordSource(tiny_pool), tmp_path / f"b{batch_size}.csv", options, set())
        lists.append(pd.read_csv(tmp_path / f"b{batch_size}.csv"))
    assert list(lists[0]["id"]) == list(lists[1]["id"])
    np.testing.assert_allclose(lists[0]["score"], lists[1]["score"], rtol=1e-4)


def peak_memory(model, pool, n: int) -> int:
    """Peak Python-heap bytes of a whole acquire run over ``pool``."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    with tempfile.TemporaryDirectory() as folder:
        acquire(model, pool, Path(folder) / "a.csv", AcquireOptions(n=n, passes=30, tta=False, batch_size=50), set())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_the_pool(tiny_bar, random_images):
    model = load_model(tiny_bar[1], "votes")
    peak_memory(model, random_images(100), 16)  # traces the graphs first
    small, large = peak_memory(model, random_images(500), 16), peak_memory(model, random_images(5000), 16)
    assert large < small + 150_000, (small, large)
    held = peak_memory(model, random_images(5000), 5000)  # a top n as large as the pool holds every row
    assert held > large + 300_000, (large, held)


def test_acquire_with_the_base_model_gives_each_galaxy_its_n_from_the_tree_and_a_bar_model_cannot(
        tiny_bar, tiny_pool, tmp_path):
    from galzoo_tf.training.model_dir import model_path

    base = load_model(model_path("base"), "votes")
    options = AcquireOptions(n=5, passes=3, tta=False, batch_size=16, montage=2, question="bar")
    pool = RecordSource(tiny_pool)
    acquire(base, pool, tmp_path / "tree.csv", options, labelled=tiny_bar[0])  # base's own records: not here
    provenance = json.loads((tmp_path / "tree.csv.json").read_text())
    assert provenance["votes_from_tree"] and provenance["volunteers"] == provenance["total_votes"]["smooth"] > 20
    fixed = AcquireOptions(n=5, passes=3, tta=False, batch_size=16, montage=2, question="bar", tree_votes=False)
    acquire(base, pool, tmp_path / "fixed.csv", fixed, labelled=tiny_bar[0])
    assert not json.loads((tmp_path / "fixed.csv.json").read_text())["votes_from_tree"]
    bar = load_model(tiny_bar[1], "votes")
    with pytest.raises(BadInputError, match="no head for"):
        acquire(bar, pool, tmp_path / "bar.csv", replace(options, tree_votes=True))
