"""Today's Galaxy Zoo trees (GZ DECaLS, GZ Euclid), catalogues of vote fractions, and --label-column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data.sources.folder import load_folder
from galzoo_tf.errors import INCONSISTENT_FRACTIONS, BadInputError
from galzoo_tf.schema import SchemaError, _build, available_schemas, load_schema

from conftest import needs_shared

runner = CliRunner()
DECALS, EUCLID = load_schema("decals"), load_schema("euclid")


def reachable_answers(schema) -> set[str]:
    """Every answer a volunteer can give, walking the tree from the root."""
    seen, frontier, answers = {schema.root}, [schema.root], set()
    while frontier:
        for answer in schema.question(frontier.pop()).answers:
            answers.add(answer.key)
            if answer.leads_to and answer.leads_to not in seen:
                seen.add(answer.leads_to)
                frontier.append(answer.leads_to)
    return answers


@pytest.mark.parametrize("schema", [DECALS, EUCLID], ids=["decals", "euclid"])
def test_the_new_trees_validate_with_every_answer_reachable(schema):
    assert {"gz2", "decals", "euclid"} <= set(available_schemas())
    assert reachable_answers(schema) == {a.key for a in schema.answers}
    assert len(schema.topological_order()) == len(schema.questions)  # no cycle
    assert _build(schema.to_json()) == schema and schema.note  # round-trips; says what is unchecked
    featured = schema.question("smooth-or-featured").answer("featured-or-disk")
    assert schema.fraction_column(featured) == "smooth-or-featured_featured-or-disk_fraction"
    assert schema.question("bar").total_column == "bar_total-votes" and schema.count_column(featured) == \
        "smooth-or-featured_featured-or-disk"


def test_the_trees_answer_as_published():
    assert DECALS.question("bar").answer_names == ("strong", "weak", "no")
    assert DECALS.question("smooth-or-featured").answer("artifact").leads_to is None  # ends the classification
    assert {a.question for a in DECALS.parents("merging")} == {"how-rounded", "edge-on-bulge", "bulge-size"}
    assert {q.name for q in EUCLID.questions} - {q.name for q in DECALS.questions} == {"clumps", "problem",
                                                                                        "artifact"}
    assert EUCLID.question("problem").answer("artifact").leads_to == "artifact"


def test_schema_command_prints_both(monkeypatch):
    from galzoo_cli.console import report

    monkeypatch.setattr(report, "_width", 250)  # wide enough that no column folds
    for name, text in (("decals", "has-spiral-arms_yes_fraction"), ("euclid", "problem_zoom")):
        result = runner.invoke(app, ["schema", name], terminal_width=200)
        assert result.exit_code == 0 and text in result.output


@pytest.fixture(scope="module")
def rings():
    root = needs_shared("data", "decals_rings")
    return root / "images", root / "catalogue.csv", pd.read_csv(root / "catalogue.csv")


def test_the_real_rings_catalogue_reads_as_published_and_its_fractions_round_trip(rings):
    images, catalogue, raw = rings
    read = load_folder(images, catalogue, schema=DECALS)
    table = read.table.set_index("id").loc[raw["iauname"]]
    assert len(table) == 470
    for column in ("smooth-or-featured_featured-or-disk", "disk-edge-on_no", "has-spiral-arms_no"):
        question, answer = column.split("_")
        np.testing.assert_array_equal(table[f"fraction/{question}/{answer}"].to_numpy(),
                                      raw[f"{column}_fraction"].to_numpy())
        if question != "smooth-or-featured":  # a yes/no question needs one column; its pseudo-counts k/N follow
            total = table[f"{question}/total"].to_numpy()
            assert (total > 0).all()
            fraction = table[f"{question}/{answer}/count"].to_numpy() / total
            assert np.abs(fraction - raw[f"{column}_fraction"].to_numpy()).max() <= 0.5 / total.min() + 1e-9
    # 40 pseudo-volunteers walk the tree: disk-edge-on is reached by the featured ones, spirals by the not edge-on
    featured = np.rint(40 * raw["smooth-or-featured_featured-or-disk_fraction"]).to_numpy()
    np.testing.assert_array_equal(table["disk-edge-on/total"], featured)
    np.testing.assert_array_equal(table["has-spiral-arms/total"], table["disk-edge-on/no/count"])
    assert (table["smooth-or-featured/total"] == 0).all() and (table["bar/total"] == 0).all()
    assert any("too few answers" in w for w in read.warnings) and any("bar" in w for w in read.warnings)


def test_a_binary_label_column_is_a_one_question_tree_with_one_vote(rings, tmp_path):
    images, catalogue, raw = rings
    read = load_folder(images, catalogue, label_column="ring")
    assert read.schema.question_names == ("ring",) and read.schema.question("ring").answer_names == ("yes", "no")
    table = read.table.set_index("id").loc[raw["iauname"]]
    assert (table["ring/total"] == 1).all()
    np.testing.assert_array_equal(table["ring/yes/count"], raw["ring"])


def small_folder(tmp_path, frame: pd.DataFrame):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    for galaxy in frame["id"]:
        Image.new("RGB", (16, 16), (40, 40, 40)).save(images / f"{galaxy}.png")
    frame.to_csv(tmp_path / "labels.csv", index=False)
    return images, tmp_path / "labels.csv"


def test_a_label_other_than_0_or_1_is_refused_by_row(tmp_path):
    images, labels = small_folder(tmp_path, pd.DataFrame({"id": ["a", "b", "c"], "Ring": [1, 0, 2]}))
    assert (load_folder(images, labels, label_column="Ring", skip_bad=True).table["ring/total"] == 1).all()
    with pytest.raises(BadInputError, match=r"row 3 \(id c\): ring is 2, not a label 0 or 1"):
        load_folder(images, labels, label_column="Ring")


def test_fractions_with_totals_become_counts_and_inconsistent_ones_are_refused(tmp_path):
    frame = pd.DataFrame({"iauname": ["g1", "g2"], "smooth-or-featured_total-votes": [40, 7],
                          "smooth-or-featured_smooth_fraction": [0.25, 3 / 7],
                          "smooth-or-featured_featured-or-disk_fraction": [0.7, 4 / 7],
                          "smooth-or-featured_artifact_fraction": [0.05, 0.0]}).rename(columns={"iauname": "id"})
    images, labels = small_folder(tmp_path, frame)
    table = load_folder(images, labels, schema=DECALS).table.set_index("id")
    assert table.loc["g1", ["smooth-or-featured/smooth/count", "smooth-or-featured/featured-or-disk/count",
                            "smooth-or-featured/artifact/count"]].tolist() == [10, 28, 2]
    assert table.loc["g2", "smooth-or-featured/total"] == 7 and table.loc["g2", "disk-edge-on/total"] == 0
    frame.loc[1, "smooth-or-featured_smooth_fraction"] = 0.5  # 3.5 votes of 7, and the fractions sum past 1
    images, labels = small_folder(tmp_path, frame)
    with pytest.raises(BadInputError, match=r"row 2 \(id g2\): smooth-or-featured: fractions .* are not whole "
                                            r"votes out of smooth-or-featured_total-votes = 7") as caught:
        load_folder(images, labels, schema=DECALS)
    assert caught.value.reason == INCONSISTENT_FRACTIONS


def test_fractions_alone_walk_on_from_real_totals_and_must_sum_to_1(tmp_path):
    frame = pd.DataFrame({"id": ["g1", "g2"], "smooth-or-featured_total-votes": [30, 10],
                          "smooth-or-featured_smooth_fraction": [0.2, 0.5],
                          "smooth-or-featured_featured-or-disk_fraction": [0.8, 0.5],
                          "smooth-or-featured_artifact_fraction": [0.0, 0.0],
                          "disk-edge-on_yes_fraction": [0.25, 0.6]})  # 'no' is 1 minus it
    images, labels = small_folder(tmp_path, frame)
    table = load_folder(images, labels, schema=DECALS).table.set_index("id")
    assert table.loc["g1", "disk-edge-on/total"] == 24  # the 24 real featured votes walk on, not 40 x 0.8
    assert table.loc["g1", ["disk-edge-on/yes/count", "disk-edge-on/no/count"]].tolist() == [6, 18]
    assert table.loc["g2", "disk-edge-on/total"] == 5
    frame["how-rounded_round_fraction"] = [0.5, 0.5]
    frame["how-rounded_in-between_fraction"] = [0.3, 0.9]  # g2's sum to 1.4 + cigar-shaped
    frame["how-rounded_cigar-shaped_fraction"] = [0.2, 0.0]
    images, labels = small_folder(tmp_path, frame)
    with pytest.raises(BadInputError, match=r"row 2 \(id g2\): how-rounded: fractions .* sum to 1\.4000, not 1"):
        load_folder(images, labels, schema=DECALS)


def test_a_catalogue_of_counts_must_give_every_question(tmp_path):
    schema = load_schema("gz2")
    counts = {schema.count_column(a): [1, 2] for q in schema.questions if q.name != "bar" for a in q.answers}
    images, labels = small_folder(tmp_path, pd.DataFrame({"id": ["g1", "g2"], **counts}))
    with pytest.raises(BadInputError, match="missing column\\(s\\) t03_bar_a06_bar_count, t03_bar_a07_no_bar_count"):
        load_folder(images, labels)


def test_label_column_refusals(tmp_path):
    images, labels = small_folder(tmp_path, pd.DataFrame({"id": ["a"], "has ring": [1], "ring": [1],
                                                          "ring_yes_count": [1]}))
    with pytest.raises(SchemaError, match="lower-case letters"):
        load_folder(images, labels, label_column="has ring")
    with pytest.raises(BadInputError, match="already has"):
        load_folder(images, labels, label_column="ring")


def test_prepare_synthetic_answers_the_euclid_tree_with_counts_that_obey_it(tmp_path):
    from galzoo_tf.data.inputs import RecordSource

    out = tmp_path / "euclid"
    result = runner.invoke(app, ["prepare", "synthetic", "--schema", "euclid", "--n", "24", "--test-size", "4",
                                 "--workers", "0", "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    keys = [EUCLID.count_key(a) for a in EUCLID.answers] + [EUCLID.total_key(q) for q in EUCLID.questions]
    columns = RecordSource(out, None, keys).columns()
    for question in EUCLID.questions:
        counts = sum(columns[EUCLID.count_key(a)] for a in question.answers)
        np.testing.assert_array_equal(counts, columns[EUCLID.total_key(question)], err_msg=question.name)
        if question.name != EUCLID.root:  # N is what the answers leading here sent
            np.testing.assert_array_equal(counts, sum(columns[EUCLID.count_key(a)]
                                                      for a in EUCLID.parents(question.name)), err_msg=question.name)
    assert columns[EUCLID.total_key(EUCLID.question("clumps"))].sum() > 0


def test_a_tree_the_simulation_cannot_perceive_is_refused_in_one_line(tmp_path):
    tree = tmp_path / "tree.json"
    tree.write_text('{"name": "mine", "root": "lens", "questions": [{"name": "lens", "answers": ['
                    '{"name": "yes", "stem": "lens_yes"}, {"name": "no", "stem": "lens_no"}]}]}')
    result = runner.invoke(app, ["prepare", "synthetic", "--schema", str(tree), "--n", "4", "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code != 0 and "simulated volunteers cannot answer 'lens'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
    with pytest.raises(SchemaError):
        from galzoo_tf.sim.perception import perceived_order

        perceived_order(load_schema(str(tree)).question("lens"))
