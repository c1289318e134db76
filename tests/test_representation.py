"""The representation: embeddings (deterministic, resumable), similarity search, anomalies, user trees, base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from galzoo_tf.data.inputs import ImageInputs
from galzoo_tf.errors import BadInputError
from galzoo_tf.representation.embed import EmbedOptions, embed_catalogue
from galzoo_tf.representation.search import anomalies, read_embeddings, similar
from galzoo_tf.training.loop import TrainConfig, train


@pytest.fixture(scope="module")
def image_folder(tiny_pool, tmp_path_factory) -> Path:
    """PNGs of 40 simulated galaxies, a near-duplicate of the first (noise of one grey level) and a blank frame."""
    from galzoo_tf.data import records

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    galaxies = [r["image"].numpy() for r in records.read_records(tiny_pool).take(40)]
    for i, image in enumerate(galaxies):
        Image.fromarray(image).save(folder / f"g{i:02d}.png")
    twin = np.clip(galaxies[0].astype(int) + rng.integers(-1, 2, galaxies[0].shape), 0, 255).astype(np.uint8)
    Image.fromarray(twin).save(folder / "twin.png")
    Image.fromarray(np.full_like(galaxies[0], 12)).save(folder / "blank.png")
    return folder


def test_embed_is_deterministic_for_a_seed_and_resumes_after_a_kill(tiny_bar, tmp_path: Path):
    records, model = tiny_bar
    options = EmbedOptions(views=3, seed=4, batch_size=16, part_rows=16)
    whole = embed_catalogue(model, ImageInputs(records=records), tmp_path / "a.parquet", options)
    again = embed_catalogue(model, ImageInputs(records=records), tmp_path / "b.parquet", options)
    first, second = read_embeddings(whole.path), read_embeddings(again.path)
    assert first.vectors.shape == (160, 128) and first.vectors.dtype == np.float32
    assert np.array_equal(first.ids, second.ids) and np.array_equal(first.vectors, second.vectors)

    def kill(done: int, total: int) -> None:
        if done >= 64:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_catalogue(model, ImageInputs(records=records), tmp_path / "c.parquet", options, progress=kill)
    resumed = embed_catalogue(model, ImageInputs(records=records), tmp_path / "c.parquet", options, resume=True)
    assert np.array_equal(read_embeddings(resumed.path).vectors, first.vectors)
    other_seed = embed_catalogue(model, ImageInputs(records=records), tmp_path / "d.parquet",
                                 EmbedOptions(views=3, seed=5, batch_size=16))
    assert not np.array_equal(read_embeddings(other_seed.path).vectors, first.vectors)


def test_embed_on_a_folder_then_similar_finds_the_near_duplicate_first(tiny_bar, image_folder, tmp_path: Path):
    embeddings = tmp_path / "emb.parquet"
    embed_catalogue(tiny_bar[1], ImageInputs(images=image_folder), embeddings, EmbedOptions())
    table = pd.read_parquet(embeddings)
    assert list(table.columns) == ["id", "embedding"] and len(table) == 42 and len(table["embedding"][0]) == 128
    result = similar(embeddings, "g00", tmp_path / "similar.csv", n=5)
    listed = pd.read_csv(tmp_path / "similar.csv")
    assert listed["id"][0] == "twin" and "g00" not in set(listed["id"]) and len(listed) == 5
    assert listed["similarity"].is_monotonic_decreasing and result.montage.is_file()
    assert json.loads((tmp_path / "similar.csv.json").read_text())["query"] == "g00"


@pytest.mark.parametrize("method", ["isolation-forest", "knn"])
def test_anomalies_rank_a_blank_frame_near_the_top(tiny_bar, image_folder, tmp_path: Path, method):
    embeddings = tmp_path / "emb.parquet"
    embed_catalogue(tiny_bar[1], ImageInputs(images=image_folder), embeddings, EmbedOptions())
    result = anomalies(embeddings, tmp_path / "odd.csv", n=10, method=method, show=False)
    assert "blank" in list(result.rows["id"][:3]) and result.rows["score"].is_monotonic_decreasing


def test_search_errors_are_one_clear_line(tiny_bar, image_folder, tmp_path: Path):
    embeddings = tmp_path / "emb.parquet"
    embed_catalogue(tiny_bar[1], ImageInputs(images=image_folder), embeddings, EmbedOptions())
    with pytest.raises(BadInputError, match="not in"):
        similar(embeddings, "nobody", tmp_path / "s.csv")
    with pytest.raises(BadInputError, match="from `galzoo embed`"):
        similar(tmp_path / "missing.parquet", "g00", tmp_path / "s.csv")
    with pytest.raises(BadInputError, match="--method"):
        anomalies(embeddings, tmp_path / "a.csv", method="magic")
    with pytest.raises(BadInputError, match=".parquet"):
        embed_catalogue(tiny_bar[1], ImageInputs(images=image_folder), tmp_path / "e.csv", EmbedOptions())


def ring_records(image_folder: Path, root: Path) -> Path:
    """Records of a user's one-question tree (ring yes/no, N = 1: an expert label) from the PNG folder."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.folder import load_folder
    from galzoo_tf.schema import load_schema

    tree = {"name": "rings", "root": "ring", "questions": [
        {"name": "ring", "text": "Does it have a ring?", "expected_votes": 1, "zoom": [1.0, 1.1],
         "answers": [{"name": "yes", "stem": "ring_yes"}, {"name": "no", "stem": "ring_no"}]}]}
    (root / "rings.json").write_text(json.dumps(tree))
    files = sorted(p.name for p in image_folder.glob("*.png"))
    labels = pd.DataFrame({"id": [f.removesuffix(".png") for f in files], "file": files,
                           "ring_yes_count": [i % 2 for i in range(len(files))]})
    labels["ring_no_count"] = 1 - labels["ring_yes_count"]
    labels.to_csv(root / "labels.csv", index=False)
    schema = load_schema(str(root / "rings.json"))
    write_records(load_folder(image_folder, root / "labels.csv", schema=schema), root / "records",
                  PrepareOptions(test_size=6, val_fraction=0.2), workers=0)
    (root / "rings.json").unlink()  # the records carry their tree
    return root / "records"


def test_fine_tuning_on_a_users_one_question_tree(tiny_bar, image_folder, tmp_path: Path):
    from galzoo_tf.tasks.registry import load_model

    records = ring_records(image_folder, tmp_path)
    out = tmp_path / "ring-model"
    result = train(records, out, TrainConfig(question="ring", epochs=1, image_size=32, batch_size=16,
                                             init_from=str(tiny_bar[1])), verbose=0)
    model = load_model(out)
    assert [(h.question, h.all_answers) for h in model.heads] == [("ring", ("yes", "no"))]
    assert model.sidecar["schema"] == "rings" and model.sidecar["init_from"]["trunk_lr_factor"] == 0.1
    assert np.isfinite(result.best_val_loss)


def test_trunk_lr_factor_zero_holds_the_trunk_while_the_heads_learn(tiny_bar, tmp_path: Path):
    from galzoo_tf.tasks.registry import load_model

    records, source = tiny_bar
    train(records, tmp_path / "bar", TrainConfig(question="smooth", epochs=1, image_size=32, batch_size=32,
                                                 init_from=str(source), trunk_lr_factor=0.0), verbose=0)
    before, after = load_model(source).model, load_model(tmp_path / "bar").model
    trunk = [layer.name for layer in before.layers if layer.weights and layer.name != "logits"]
    for old, new in zip([before.get_layer(n) for n in trunk], [layer for layer in after.layers
                                                              if layer.weights and layer.name != "logits"],
                        strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(old.get_weights(), new.get_weights(), strict=True))
    assert not np.allclose(after.get_layer("logits").get_weights()[1], 0)  # the new head moved off its zero bias


@pytest.mark.parametrize(("options", "message"), [
    ({"trunk_lr_factor": 0.5}, "--trunk-lr-factor applies to full fine-tuning"),
    ({"width": 0.5}, "--width applies to --task parameters"),
    ({"task": "parameters", "min_votes": 3}, "--min-votes applies to --task votes"),
])
def test_an_option_that_does_not_apply_is_an_error(tiny_bar, tmp_path: Path, options, message):
    config = TrainConfig(**{"question": "bar", "epochs": 1, "image_size": 32, **options})
    with pytest.raises(BadInputError, match=message):
        train(tiny_bar[0], tmp_path / "out", config, verbose=0)


def test_the_shipped_base_model_loads_safely_and_predicts_on_records(tiny_bar, tmp_path: Path):
    from galzoo_tf.catalogues.predict import predict_catalogue
    from galzoo_tf.tasks.calibrate import calibrate_model
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.tasks.requests import CalibrateRequest, PredictRequest

    base = load_model("base")
    assert base.sidecar["question"] == "all" and len(base.heads) == 11
    assert {"command", "seed", "data_fingerprint", "galzoo_version"} <= set(base.sidecar["shipped"])
    result = predict_catalogue([Path("base")], ImageInputs(records=tiny_bar[0], split="test"),
                               tmp_path / "base.csv", PredictRequest(passes=2))
    table = pd.read_csv(tmp_path / "base.csv")
    assert result.rows == 40 and table["bar_bar_rho_mean"].between(0, 1).all()
    with pytest.raises(BadInputError, match="shipped base model is not changed"):
        calibrate_model(Path("base"), tiny_bar[0], tmp_path / "cal", CalibrateRequest(tune_dropout=(0.5, 0.6)))


def test_embed_similar_and_anomalies_from_the_command_line(tiny_bar, image_folder, tmp_path: Path):
    from typer.testing import CliRunner

    from galzoo_cli.main import app

    runner, embeddings = CliRunner(), tmp_path / "emb.parquet"
    steps = [["embed", "--model", str(tiny_bar[1]), "--images", str(image_folder), "--out", str(embeddings)],
             ["similar", "--embeddings", str(embeddings), "--id", "g00", "--n", "4", "--out",
              str(tmp_path / "s.csv")],
             ["anomalies", "--embeddings", str(embeddings), "--n", "5", "--method", "knn", "--out",
              str(tmp_path / "a.csv")]]
    for step in steps:
        result = runner.invoke(app, step)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "s-montage.png").stat().st_size > 1000 and len(pd.read_csv(tmp_path / "a.csv")) == 5
    again = runner.invoke(app, steps[0])  # the embeddings exist: one line, nothing replaced
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output
