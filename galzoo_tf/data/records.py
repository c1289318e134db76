"""TFRecord format of galzoo: one ``tf.train.Example`` per galaxy, sharded, with a manifest.

A record holds ``id`` (bytes), ``image`` (raw bytes or PNG, shape and dtype in the
manifest), ``<question>/<answer>/count`` and ``<question>/total`` (int64), optional
float features such as ``truth/...`` and ``meta/ra``, and ``split``. Shards are written
to a temporary name and renamed, so a shard on disk under its final name is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import tensorflow as tf

from galzoo_tf.data.layout import FORMAT, MANIFEST, ImageSpec
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import corrupt_files, read_json, replaced_atomically, sha256_file


def encode_example(galaxy_id: str, image: bytes, ints: Mapping[str, int],
                   floats: Mapping[str, float], split: str) -> bytes:
    """Serialise one galaxy; map keys are sorted so equal inputs give equal bytes."""
    feature = {
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[galaxy_id.encode()])),
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "split": tf.train.Feature(bytes_list=tf.train.BytesList(value=[split.encode()])),
    }
    for key, value in ints.items():
        feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    for key, value in floats.items():
        feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def feature_spec(manifest: Mapping) -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec of a record set, built from its manifest."""
    spec = {
        "id": tf.io.FixedLenFeature([], tf.string),
        "image": tf.io.FixedLenFeature([], tf.string),
        "split": tf.io.FixedLenFeature([], tf.string),
    }
    spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in manifest["int_features"]})
    spec.update({k: tf.io.FixedLenFeature([], tf.float32) for k in manifest["float_features"]})
    return spec


def decode_image(image: tf.Tensor, spec: ImageSpec) -> tf.Tensor:
    """Bytes of one record's image to a tensor of ``spec.shape`` (graph op)."""
    if spec.encoding == "png":
        decoded = tf.io.decode_png(image, channels=spec.shape[-1])
    else:
        decoded = tf.io.decode_raw(image, tf.dtypes.as_dtype(spec.dtype))
    return tf.reshape(decoded, spec.shape)


def parser(manifest: Mapping):
    """A graph function: serialised record -> dict of tensors with the image decoded."""
    spec = feature_spec(manifest)
    image_spec = ImageSpec.from_json(manifest["image"])

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.io.parse_single_example(serialized, spec)
        features["image"] = decode_image(features["image"], image_spec)
        return features

    return parse


def read_manifest(directory: str | Path) -> dict:
    """Load ``manifest.json`` of a record folder, with a clear error if it is absent, damaged or foreign."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BadInputError("no manifest", f"{directory}: no {MANIFEST}; run `galzoo prepare` to make records")
    manifest = read_json(path)
    if manifest.get("format") != FORMAT:
        raise BadInputError("no manifest", f"{path}: not a galzoo record manifest (format {manifest.get('format')!r})")
    return manifest


def shard_paths(directory: str | Path, manifest: Mapping, split: str | None = None) -> list[str]:
    """Shard files of ``split`` (all when None), each checked against the manifest's size and sha256.

    Same-size corruption (flipped bytes) is caught too: every shard is hashed the first time a
    stage reads it, and the verdict is kept by size and mtime (``fileio.corrupt_files``).
    """
    directory = Path(directory)
    expected = {}
    for shard in manifest["shards"]:
        if split is not None and shard["split"] != split:
            continue
        path = directory / shard["file"]
        if not path.is_file():
            raise BadInputError("missing shard", f"{path}: shard listed in the manifest is missing")
        if path.stat().st_size != shard["bytes"]:
            raise _corrupt(path, "its size differs from the manifest's")
        expected[path] = shard["sha256"]
    for path in corrupt_files(expected)[:1]:
        raise _corrupt(path, "its sha256 differs from the manifest's")
    return [str(path) for path in expected]


def _corrupt(path: Path, why: str) -> BadInputError:
    return BadInputError("corrupt shard", f"{path}: shard is damaged or changed since prepare ({why}); run the "
                                          "same `galzoo prepare` again to rewrite it")


def read_records(directory: str | Path, split: str | None = None) -> tf.data.Dataset:
    """Parsed records of one split (or all), in shard order; shards are checked first."""
    manifest = read_manifest(directory)
    paths = shard_paths(directory, manifest, split)
    return tf.data.TFRecordDataset(paths).map(parser(manifest), num_parallel_calls=tf.data.AUTOTUNE,
                                              deterministic=True)


def write_shard(path: Path, records: Iterable[bytes]) -> dict:
    """Write records to ``path`` atomically; returns count, size and sha256 of the shard."""
    count = 0
    with replaced_atomically(path) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
        for record in records:
            writer.write(record)
            count += 1
    return {"file": path.name, "count": count, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
