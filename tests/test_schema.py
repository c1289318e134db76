"""The GZ2 tree as data: structure, names, and adding another tree without code changes."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from galzoo_tf.schema import SchemaError, available_schemas, load_schema

from conftest import needs_shared

LEADS_TO = {  # the tree of the issue / GZ2_SCHEMA.md, answer stem -> next question (None: end)
    "t01_smooth_or_features_a01_smooth": "rounded", "t01_smooth_or_features_a02_features_or_disk": "edgeon",
    "t01_smooth_or_features_a03_star_or_artifact": None, "t02_edgeon_a04_yes": "bulge_shape",
    "t02_edgeon_a05_no": "bar", "t03_bar_a06_bar": "spiral", "t03_bar_a07_no_bar": "spiral",
    "t04_spiral_a08_spiral": "arms_winding", "t04_spiral_a09_no_spiral": "bulge", "t06_odd_a14_yes": "odd_feature",
    "t06_odd_a15_no": None, "t10_arms_winding_a28_tight": "arms_number",
}


def test_gz2_has_eleven_questions_and_37_answers_with_short_names():
    schema = load_schema("gz2")
    assert schema.question_names == ("smooth", "edgeon", "bar", "spiral", "bulge", "odd", "rounded",
                                     "odd_feature", "bulge_shape", "arms_winding", "arms_number")
    assert len(schema.answers) == 37
    assert [q.task for q in schema.questions] == [f"T{i:02d}" for i in range(1, 12)]


def test_gz2_tree_edges_match_the_published_tree():
    schema = load_schema("gz2")
    by_stem = {a.stem: a for a in schema.answers}
    for stem, target in LEADS_TO.items():
        assert by_stem[stem].leads_to == target, stem
    for name in ("bulge", "rounded", "bulge_shape"):
        assert {a.leads_to for a in schema.question(name).answers} == {"odd"}
    assert {a.leads_to for a in schema.question("arms_number").answers} == {"bulge"}
    assert {a.leads_to for a in schema.question("odd_feature").answers} == {None}
    assert {a.question for a in schema.parents("bulge")} == {"spiral", "arms_number"}
    assert schema.parents("smooth") == ()


def test_gz2_stems_skip_a35_and_dust_lane_is_a38():
    schema = load_schema("gz2")
    numbers = sorted(int(re.search(r"_a(\d\d)_", a.stem).group(1)) for a in schema.answers)
    assert numbers == [*range(1, 35), 36, 37, 38]
    assert schema.question("odd_feature").answer("dust_lane").stem == "t08_odd_feature_a38_dust_lane"
    assert schema.count_column(schema.question("bar").answer("bar")) == "t03_bar_a06_bar_count"


def test_kaggle_names_follow_tree_order():
    schema = load_schema("gz2")
    assert schema.question("smooth").answer("artifact").kaggle == "Class1.3"
    assert schema.question("odd_feature").answer("dust_lane").kaggle == "Class8.7"
    assert schema.question("arms_number").answer("cant_tell").kaggle == "Class11.6"
    assert len({a.kaggle for a in schema.answers}) == 37


def test_topological_order_puts_parents_first():
    schema = load_schema("gz2")
    order = [q.name for q in schema.topological_order()]
    for question in schema.questions:
        for parent in schema.parents(question.name):
            assert order.index(parent.question) < order.index(question.name)


def test_questions_found_by_short_name_task_or_stem():
    schema = load_schema("gz2")
    assert schema.question("T03") is schema.question("bar") is schema.question("t03_bar")
    with pytest.raises(KeyError, match="no question 'barred'"):
        schema.question("barred")


def test_real_catalogue_has_every_count_column():
    path = needs_shared("data", "gz2_stripe82_counts", "table5.csv.gz")
    with gzip.open(path, "rt") as handle:
        header = handle.readline().strip().split(",")
    schema = load_schema("gz2")
    assert {schema.count_column(a) for a in schema.answers} <= set(header)


def decals_like_tree() -> dict:
    return {"name": "decals_mini", "root": "smooth-or-featured", "columns": {"id": "iauname"},
            "questions": [
                {"name": "smooth-or-featured", "expected_votes": 5, "answers": [
                    {"name": "smooth", "stem": "smooth-or-featured_smooth", "leads_to": None},
                    {"name": "featured-or-disk", "stem": "smooth-or-featured_featured-or-disk", "leads_to": "bar"},
                    {"name": "artifact", "stem": "smooth-or-featured_artifact", "leads_to": None}]},
                {"name": "bar", "expected_votes": 3, "answers": [
                    {"name": "strong", "stem": "bar_strong"}, {"name": "weak", "stem": "bar_weak"},
                    {"name": "no", "stem": "bar_no"}]}]}


def test_another_tree_is_a_json_file(tmp_path):
    path = tmp_path / "decals_mini.json"
    path.write_text(json.dumps(decals_like_tree()))
    schema = load_schema(str(path))
    assert schema.question_names == ("smooth-or-featured", "bar")
    assert schema.count_column(schema.question("bar").answer("weak")) == "bar_weak_count"
    assert schema.id_column == "iauname"
    assert "gz2" in available_schemas()


@pytest.mark.parametrize("breakage, message", [
    (lambda t: t["questions"][0]["answers"][1].update(leads_to="nowhere"), "unknown 'nowhere'"),
    (lambda t: t["questions"][0]["answers"][1].update(leads_to=None), "never asked"),
    (lambda t: t["questions"][1]["answers"][0].update(leads_to="smooth-or-featured"), "cycle"),
    (lambda t: t["questions"][1]["answers"].append({"name": "no", "stem": "bar_no2"}), "distinct answers"),
])
def test_malformed_trees_are_refused(tmp_path, breakage, message):
    tree = decals_like_tree()
    breakage(tree)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(tree))
    with pytest.raises(SchemaError, match=message):
        load_schema(str(path))


def test_unknown_schema_name_lists_shipped_trees():
    with pytest.raises(SchemaError, match="shipped: decals, euclid, gz2"):
        load_schema("euclid_q1")
