"""The promises of docs/reliability.md: one clear line for every failure, and nothing that existed is changed.

Each test runs a command the way a careless user would and checks three things: the exit code,
exactly one ``error:`` line naming the problem (no traceback), and that every file that existed
before has the same sha256 after (and no temporary, partial or lock file is left behind).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf import fileio
from galzoo_tf.data import records
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import corrupt_files
from galzoo_tf.outputs import Output, OutputLock, remove_written

from conftest import make_gz2

runner = CliRunner()
GALZOO = [str(Path(sys.executable).with_name("galzoo"))]  # the installed command, as users run it
LEFTOVERS = (".tmp", ".partial", ".lock", ".new")


def files_under(*roots: Path) -> dict[Path, str]:
    """sha256 of every file below the roots."""
    return {path: hashlib.sha256(path.read_bytes()).hexdigest()
            for root in roots for path in ([root] if root.is_file() else sorted(root.rglob("*"))) if path.is_file()}


def assert_nothing_changed(before: dict[Path, str], *roots: Path) -> None:
    """Every file that existed is there with its bytes, and no temporary, partial or lock file is left."""
    after = files_under(*roots)
    assert {path: after.get(path) for path in before} == before
    left = [p for p in after if any(mark in p.name for mark in LEFTOVERS)]
    assert not left, left


def error_line(result, code: int = 2) -> str:
    """The one error line of a failed command (and no traceback)."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def gz2_args(project, out: Path, *extra: object) -> list:
    return ["prepare", "gz2", "--catalogue", project.catalogue, "--images", project.images, "--mapping",
            project.mapping, "--out", out, "--test-size", "2", "--min-votes", "smooth=0", "--workers", "0", *extra]


@pytest.fixture(scope="module")
def catalogue(tiny_bar, tmp_path_factory) -> Path:
    """A vote catalogue (CSV) of the tiny model's test split."""
    records_dir, model = tiny_bar
    out = tmp_path_factory.mktemp("catalogue") / "bar.csv"
    result = invoke("predict", "--model", model, "--data", records_dir, "--split", "test", "--out", out,
                    "--passes", "2", "--no-tta")
    assert result.exit_code == 0, result.output
    return out


# 1. An output that is an input, or a folder of someone else's files ------------------------------------------

def test_fraction_refuses_to_write_over_its_own_catalogue(catalogue):
    before = files_under(catalogue.parent)
    line = error_line(invoke("fraction", "--catalogue", catalogue, "--answer", "bar_bar", "--out", catalogue))
    assert f"--out {catalogue} is the catalogue" in line
    assert_nothing_changed(before, catalogue.parent)


def test_acquire_refuses_to_write_over_its_exclusion_list(tiny_bar, tiny_pool, tmp_path):
    sent = tmp_path / "sent.csv"
    sent.write_text("id\ngalaxy-1\n")
    before = files_under(tmp_path)
    line = error_line(invoke("acquire", "--model", tiny_bar[1], "--pool", tiny_pool, "--n", "4", "--exclude", sent,
                             "--out", sent))
    assert "is the exclusion list" in line
    assert_nothing_changed(before, tmp_path)


def test_train_and_calibrate_refuse_an_out_that_is_their_input(tiny_bar):
    records_dir, model = tiny_bar
    before = files_under(records_dir, model)
    line = error_line(invoke("train", "--data", records_dir, "--out", records_dir, "--epochs", "1"))
    assert "is the records" in line
    line = error_line(invoke("calibrate", "--model", model, "--data", records_dir, "--out", model.parent))
    assert f"--out {model.parent} contains the model directory" in line
    assert_nothing_changed(before, records_dir, model)


def test_prepare_overwrite_deletes_only_what_prepare_wrote(tmp_path):
    project = make_gz2(tmp_path / "gz2", n=10)
    out = tmp_path / "records"
    assert invoke(*gz2_args(project, out)).exit_code == 0
    (out / "mine.tfrecord").write_bytes(b"a user's own records")
    (out / "notes.txt").write_text("keep me")
    mine = files_under(out / "mine.tfrecord", out / "notes.txt")
    old_shards = {p.name for p in out.glob("*-of-*.tfrecord")}
    result = invoke(*gz2_args(project, out, "--seed", "7", "--shard-size", "3", "--overwrite"))
    assert result.exit_code == 0, result.output
    assert_nothing_changed(mine, out / "mine.tfrecord", out / "notes.txt")
    shards = {p.name for p in out.glob("*-of-*.tfrecord")}
    assert shards == {s["file"] for s in records.read_manifest(out)["shards"]} and shards != old_shards
    for damaged in ("manifest.json", ".prepare-state.json"):  # the shards are then known by their names alone
        (out / damaged).write_text('{"shards": [')
    result = invoke(*gz2_args(project, out, "--seed", "8", "--shard-size", "4", "--overwrite"))
    assert result.exit_code == 0, result.output
    assert_nothing_changed(mine, out / "mine.tfrecord", out / "notes.txt")
    assert {p.name for p in out.glob("*-of-*.tfrecord")} == {s["file"] for s in records.read_manifest(out)["shards"]}


def test_prepare_refuses_a_folder_of_someone_elses_files(tmp_path):
    project = make_gz2(tmp_path / "gz2", n=6)
    theirs = tmp_path / "photos"
    theirs.mkdir()
    (theirs / "holiday.jpg").write_bytes(b"not ours")
    before = files_under(theirs)
    line = error_line(invoke(*gz2_args(project, theirs, "--overwrite")))
    assert "holds files galzoo did not write (e.g. holiday.jpg)" in line
    line = error_line(invoke(*gz2_args(project, project.images)))
    assert "is the images folder" in line
    assert_nothing_changed(before, theirs)


# 2. Arguments that name files -----------------------------------------------------------------------------------

def test_an_exclusion_list_that_does_not_exist_is_an_error_not_an_id(tiny_bar, tiny_pool, tmp_path):
    out = tmp_path / "next.csv"
    line = error_line(invoke("acquire", "--model", tiny_bar[1], "--pool", tiny_pool, "--n", "4", "--exclude",
                             tmp_path / "sent-to-volunteers.txt", "--out", out))
    assert "sent-to-volunteers.txt: no such file" in line
    assert not out.exists() and not list(tmp_path.iterdir())


# 3. Numbers out of range, and galaxies worth a warning ----------------------------------------------------------

def test_a_count_beyond_int64_is_refused_naming_row_and_column(tmp_path):
    project = make_gz2(tmp_path / "gz2", n=8)
    frame = pd.read_csv(project.catalogue, dtype={"dr7objid": str})
    frame["t03_bar_a06_bar_count"] = frame["t03_bar_a06_bar_count"].astype(object)
    frame.loc[4, "t03_bar_a06_bar_count"] = "1e20"
    frame.to_csv(project.catalogue, index=False)
    before = files_under(tmp_path)
    line = error_line(invoke(*gz2_args(project, tmp_path / "out")))
    assert f"row 5 (id {frame['dr7objid'][4]})" in line and "t03_bar_a06_bar_count is 1e+20, too large" in line
    assert_nothing_changed(before, tmp_path)


def test_a_bad_row_after_dropped_stripe82_rows_is_named_by_its_row_in_the_file(tmp_path):
    project = make_gz2(tmp_path / "gz2", n=8)
    frame = pd.read_csv(project.catalogue, dtype={"dr7objid": str})
    frame["sample"] = ["stripe82", "stripe82"] + ["original"] * (len(frame) - 2)  # dropped before the checks
    frame["t03_bar_a06_bar_count"] = frame["t03_bar_a06_bar_count"].astype(object)
    frame.loc[4, "t03_bar_a06_bar_count"] = "-3"
    frame.to_csv(project.catalogue, index=False)
    line = error_line(invoke(*gz2_args(project, tmp_path / "out")))
    assert f"row 5 (id {frame['dr7objid'][4]})" in line


def test_galaxies_without_votes_and_blank_images_are_written_with_one_warning_each(tmp_path):
    images = tmp_path / "cutouts"
    images.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for index in range(8):
        planes = np.zeros((32, 32), np.float32) if index < 3 else rng.normal(size=(32, 32)).astype(np.float32)
        fits.writeto(images / f"g{index}.fits", planes)
        votes = 0 if index < 5 else 3
        rows.append({"id": f"g{index}", "smooth-or-featured_smooth_count": votes,
                     "smooth-or-featured_featured-or-disk_count": votes})
    labels = tmp_path / "labels.csv"
    tree = tmp_path / "tree.json"
    tree.write_text(json.dumps({"name": "one", "root": "smooth-or-featured", "questions": [
        {"name": "smooth-or-featured", "answers": [{"name": "smooth", "stem": "smooth-or-featured_smooth"},
                                                   {"name": "featured-or-disk",
                                                    "stem": "smooth-or-featured_featured-or-disk"}]}]}))
    pd.DataFrame(rows).to_csv(labels, index=False)
    result = invoke("prepare", "folder", "--images", images, "--labels", labels, "--schema", tree, "--out",
                    tmp_path / "out", "--size", "32", "--test-size", "1", "--workers", "0")
    assert result.exit_code == 0, result.output
    assert result.output.count("5 of 8 galaxies have no votes for any question") == 1
    assert result.output.count("3 images are blank (every pixel 0)") == 1
    manifest = records.read_manifest(tmp_path / "out")
    assert manifest["total"] == 8 and manifest["blank_images"] == 3


# 4. Images that would exhaust memory -----------------------------------------------------------------------------

def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: a decompression bomb in a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_a_decompression_bomb_is_a_clear_error_naming_row_and_file_or_skipped(tmp_path):
    project = make_gz2(tmp_path / "gz2", n=10)
    (project.images / "107.jpg").write_bytes(png_claiming(14000, 14000))
    galaxy = pd.read_csv(project.catalogue, dtype={"dr7objid": str})["dr7objid"][7]
    before = files_under(tmp_path)
    line = error_line(invoke(*gz2_args(project, tmp_path / "out")))
    assert f"row 8 (id {galaxy})" in line and "107.jpg: image has 196,000,000 pixels" in line
    assert_nothing_changed(before, tmp_path)
    result = invoke(*gz2_args(project, tmp_path / "out", "--skip-bad"))
    assert result.exit_code == 0, result.output
    assert records.read_manifest(tmp_path / "out")["skipped"] == {"image too large": 1}


# 5. Corrupt records ------------------------------------------------------------------------------------------

def test_same_size_corruption_of_a_shard_is_caught_and_names_the_shard(tiny_bar, tiny_pool, tmp_path):
    pool = tmp_path / "pool"
    shutil.copytree(tiny_pool, pool)
    shard = pool / records.read_manifest(pool)["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, same mtime resolution
    shard.write_bytes(bytes(data))
    before = files_under(tmp_path)
    line = error_line(invoke("acquire", "--model", tiny_bar[1], "--pool", pool, "--n", "4", "--passes", "2",
                             "--out", tmp_path / "next.csv"))
    assert f"{shard}: shard is damaged or changed since prepare (its sha256 differs" in line
    assert_nothing_changed(before, tmp_path)


def test_shards_are_hashed_once_per_size_and_mtime(tmp_path, monkeypatch):
    from galzoo_tf import fileio

    shard = tmp_path / "a.tfrecord"
    shard.write_bytes(b"x" * 1000)
    digest = hashlib.sha256(shard.read_bytes()).hexdigest()
    calls = []
    monkeypatch.setattr(fileio, "sha256_file", lambda path: calls.append(path) or digest)
    assert corrupt_files({shard: digest}) == [] and corrupt_files({shard: digest}) == []
    fileio._VERIFIED.clear()  # a new process: the verdict comes from the cache file
    assert corrupt_files({shard: digest}) == [] and len(calls) == 1
    os.utime(shard, ns=(0, 12345))  # touched: hashed again
    assert corrupt_files({shard: digest}) == [] and len(calls) == 2


def test_a_truncated_manifest_is_a_clear_error(tiny_bar, tiny_pool, tmp_path):
    pool = tmp_path / "pool"
    shutil.copytree(tiny_pool, pool)
    manifest = pool / "manifest.json"
    manifest.write_text(manifest.read_text()[:200])
    before = files_under(tmp_path)
    line = error_line(invoke("acquire", "--model", tiny_bar[1], "--pool", pool, "--n", "4",
                             "--out", tmp_path / "next.csv"))
    assert f"{manifest}: not valid JSON" in line and "truncated or damaged" in line
    assert_nothing_changed(before, tmp_path)


# 6. Places that cannot be written ----------------------------------------------------------------------------

@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write in: a read-only tmpfs when running as root (which ignores modes), else mode 555."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("running as root without permission to mount: no folder can be made unwritable")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_output_is_refused_before_any_work(read_only_folder, tiny_bar):
    before = files_under(*tiny_bar)
    started = time.perf_counter()
    line = error_line(invoke("prepare", "synthetic", "--n", "500", "--out", read_only_folder / "records"))
    assert f"cannot write in {read_only_folder}" in line
    assert time.perf_counter() - started < 20  # refused before 500 galaxies are drawn
    line = error_line(invoke("predict", "--model", tiny_bar[1], "--data", tiny_bar[0], "--out",
                             read_only_folder / "bar.csv"))
    assert f"cannot write in {read_only_folder}" in line
    assert_nothing_changed(before, *tiny_bar)


def test_output_paths_of_the_wrong_kind_are_one_line_each(tiny_bar, tiny_pool, tmp_path):
    (tmp_path / "taken.csv").mkdir()
    line = error_line(invoke("predict", "--model", tiny_bar[1], "--data", tiny_bar[0], "--out",
                             tmp_path / "taken.csv"))
    assert "taken.csv is a folder; give a file name" in line
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    line = error_line(invoke("acquire", "--model", tiny_bar[1], "--pool", tiny_pool, "--n", "4",
                             "--out", tmp_path / "notes.txt" / "next.csv"))
    assert f"cannot create {tmp_path / 'notes.txt'}: {tmp_path / 'notes.txt'} is a file, not a folder" in line


def test_a_full_disk_midway_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch):
    project = make_gz2(tmp_path / "gz2", n=12)
    out = tmp_path / "records"
    real, written = records.write_shard, []

    def disk_fills_up(examples):
        yield next(examples)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def second_shard_fills_the_disk(path, examples):
        written.append(path)
        return real(path, examples if len(written) == 1 else disk_fills_up(examples))

    monkeypatch.setattr(records, "write_shard", second_shard_fills_the_disk)
    before = files_under(tmp_path)
    line = error_line(invoke(*gz2_args(project, out, "--shard-size", "4")))
    assert "No space left on device" in line and len(written) == 2
    assert_nothing_changed(before, tmp_path)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.undo()
    result = invoke(*gz2_args(project, out, "--shard-size", "4"))  # space again: resumes after the first shard
    assert result.exit_code == 0 and "kept 1 finished" in result.output, result.output


# 7. Models that cannot be loaded ------------------------------------------------------------------------------

@pytest.fixture
def model_copy(tiny_bar, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(tiny_bar[1], copy)
    return copy


def predict_with(model: Path, tiny_bar, tmp_path: Path):
    return invoke("predict", "--model", model, "--data", tiny_bar[0], "--out", tmp_path / "out.csv", "--passes", "2")


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
def test_a_damaged_model_file_is_named(model_copy, tiny_bar, tmp_path, damage):
    path = model_copy / "model.keras"
    path.write_bytes(os.urandom(4096) if damage == "random bytes" else path.read_bytes()[:3000])
    before = files_under(tmp_path)
    line = error_line(predict_with(model_copy, tiny_bar, tmp_path))
    assert f"{path}: cannot load the model" in line
    assert_nothing_changed(before, tmp_path)


def test_an_invalid_galzoo_json_is_named(model_copy, tiny_bar, tmp_path):
    sidecar = model_copy / "galzoo.json"
    sidecar.write_text(sidecar.read_text()[:100])
    line = error_line(predict_with(model_copy, tiny_bar, tmp_path))
    assert f"{sidecar}: not valid JSON" in line


def test_a_lambda_layer_is_refused_in_safe_mode_in_one_line(model_copy, tiny_bar, tmp_path):
    import keras

    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(model_copy / "model.keras")
    line = error_line(predict_with(model_copy, tiny_bar, tmp_path))
    assert "model.keras: refused in safe mode" in line and "Lambda" in line


def test_a_foreign_architecture_is_named(model_copy, tiny_bar, tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs))).save(model_copy / "model.keras")
    line = error_line(predict_with(model_copy, tiny_bar, tmp_path))
    assert str(model_copy) in line and "foreign model" in line


def test_a_corrupt_checkpoint_on_resume_is_named(model_copy, tiny_bar):
    for name in ("model.keras", "galzoo.json"):
        (model_copy / name).unlink()  # an unfinished run: checkpoint and state only
    (model_copy / "checkpoint.keras").write_bytes(b"PK\x03\x04 not really a zip")
    before = files_under(model_copy)
    line = error_line(invoke("train", "--data", tiny_bar[0], "--out", model_copy, "--question", "bar", "--epochs",
                             "2", "--image-size", "32", "--batch-size", "32", "--resume"))
    assert f"{model_copy / 'checkpoint.keras'}: cannot load the model" in line
    after = files_under(model_copy)
    assert {p: after[p] for p in before if p.name != "train-config.json"} == \
        {p: h for p, h in before.items() if p.name != "train-config.json"}


# 9. Two runs on one output -------------------------------------------------------------------------------------

HOLDER = """
import fcntl, json, os, socket, sys, time
handle = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(handle, fcntl.LOCK_EX)
os.write(handle, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"}).encode())
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_lock(lock: Path, seconds: float = 600) -> subprocess.Popen:
    """Another process holding ``lock`` as a galzoo run does, for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_on_a_locked_output_is_refused_even_with_overwrite(tiny_bar, catalogue, tmp_path):
    out = tmp_path / "bar.csv"
    shutil.copy(catalogue, out)
    holder = hold_lock(tmp_path / ".bar.csv.lock")
    try:
        before = files_under(tmp_path)
        line = error_line(invoke("predict", "--model", tiny_bar[1], "--data", tiny_bar[0], "--out", out,
                                 "--overwrite"))
        assert f"{out} is being written by another galzoo run (pid {holder.pid}" in line
        assert files_under(tmp_path) == before
    finally:
        holder.kill()


def test_a_lock_left_by_a_dead_run_is_free_and_its_temporaries_alone_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out, lock = tmp_path / "list.csv", tmp_path / ".list.csv.lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "earlier"}))
    host = fileio.host_tag()
    left = tmp_path / f".list.csv.{dead.pid}@{host}.tmp"
    kept = [tmp_path / f".list.csv.{os.getppid()}@{host}.tmp",  # a live writer's
            tmp_path / f".list.csv.{dead.pid}@another-host.tmp",  # a writer on another machine sharing the disk
            tmp_path / f".list.csv-old.{dead.pid}@{host}.tmp"]  # another output's
    for path in (left, *kept):
        path.write_text("what a run was writing")
    with OutputLock(Output.file(out)):
        assert json.loads(lock.read_text())["pid"] == os.getpid() and not left.exists()
        with OutputLock(Output.file(out)):  # a library call inside another: the same lock, held once
            pass
        assert lock.exists()
    assert not lock.exists() and all(path.exists() for path in kept)


def test_a_live_lock_is_refused_never_removed_and_waited_for_when_asked(tmp_path):
    out, lock = tmp_path / "list.csv", tmp_path / ".list.csv.lock"
    holder = hold_lock(lock)
    try:
        with pytest.raises(BadInputError, match=f"being written by another galzoo run \\(pid {holder.pid}"):
            OutputLock(Output.file(out)).__enter__()
        assert json.loads(lock.read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    brief = hold_lock(lock, seconds=1.5)
    started = time.monotonic()
    with OutputLock(Output.file(out), wait=30):
        assert time.monotonic() - started >= 0.5 and brief.poll() is not None
    assert not lock.exists()


def test_two_runs_racing_for_one_output_never_both_hold_it(tmp_path):
    race = """
import sys, time
from pathlib import Path
from galzoo_tf.errors import BadInputError
from galzoo_tf.outputs import Output, OutputLock
held = 0
for _ in range(200):
    try:
        with OutputLock(Output.file(Path(sys.argv[1]))):
            marker = Path(sys.argv[1] + ".owner")
            assert not marker.exists(), "two runs held the lock"
            marker.write_text("x")
            time.sleep(0.002)
            marker.unlink()
            held += 1
    except BadInputError:
        pass
print(held)
"""
    runs = [subprocess.Popen([sys.executable, "-c", race, str(tmp_path / "out.csv")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in results]
    assert sum(int(out) for out, _ in results) > 0


def test_the_current_folder_as_output_is_locked_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with OutputLock(Output.directory(Path("."))):
        assert (tmp_path.parent / f".{tmp_path.name}.lock").exists() and (tmp_path / ".galzoo").exists()
    assert not (tmp_path.parent / f".{tmp_path.name}.lock").exists()


def test_remove_written_never_reaches_outside_its_folder(tmp_path):
    (tmp_path / "outside.txt").write_text("a user's")
    (tmp_path / "records").mkdir()
    for name in ("../outside.txt", str(tmp_path / "outside.txt"), ".."):
        with pytest.raises(BadInputError, match="not a file galzoo wrote in this folder"):
            remove_written(tmp_path / "records", [name])
    assert (tmp_path / "outside.txt").read_text() == "a user's"


# 10. Start-up noise, signals and any other failure ---------------------------------------------------------------

def test_an_error_after_tensorflow_starts_is_the_only_line_on_stderr(tiny_bar):
    records_dir, model = tiny_bar
    result = subprocess.run([*GALZOO, "predict", "--model", str(model), "--data", str(records_dir), "--out",
                             str(records_dir)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: --out {records_dir} is the records {records_dir}; galzoo "
                                                  "never writes over its inputs: choose another --out"]


@pytest.mark.parametrize(("tree", "expected"), [
    ('{"name": "ring", "root": "ring", "questions": [', "not valid JSON"),
    ('{"name": "ring", "root": "ring", "questions": [{"name": "ring"}]}', "lacks the field 'answers'"),
    ('{"name": "ring", "root": "ring", "questions": 3}', "not a galzoo tree"),
    ('{"name": "ring", "root": "bar", "questions": [{"name": "ring", "answers": [{"name": "yes", "stem": "y"}]}]}',
     "root 'bar' is not a question"),
])
def test_a_broken_tree_file_is_one_line_naming_it(tmp_path, tree, expected):
    path = tmp_path / "ring.json"
    path.write_text(tree)
    line = error_line(invoke("schema", path))
    assert f"{path}: " in line and expected in line


def test_an_unreadable_exclusion_csv_and_brackets_in_a_message_are_one_line(tiny_bar, tiny_pool, tmp_path):
    sent = tmp_path / "sent.csv"
    sent.write_bytes(b"id,note\n\"unclosed,quote\n" + b"\xff\xfe" * 10)
    line = error_line(invoke("acquire", "--model", tiny_bar[1], "--pool", tiny_pool, "--n", "4", "--exclude", sent,
                             "--out", tmp_path / "list.csv"))
    assert f"--exclude {sent}: not a readable CSV" in line
    odd = tmp_path / "[/bold]" / "sent[red].txt"  # Rich markup in a path is shown, not interpreted
    line = error_line(invoke("acquire", "--model", tiny_bar[1], "--pool", tiny_pool, "--n", "4", "--exclude", odd,
                             "--out", tmp_path / "list.csv"))
    assert f"--exclude {odd}: no such file" in line


def test_an_unexpected_error_is_one_line_with_a_hint(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something galzoo did not foresee\nsecond line")

    monkeypatch.setattr("galzoo_tf.science.fraction.population_fraction", broken)
    line = error_line(invoke("fraction", "--catalogue", "x.csv", "--answer", "bar_bar"), code=1)
    assert "RuntimeError: something galzoo did not foresee (galzoo stopped on an unexpected error" in line


def children_of(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()
            and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]}


def survivors(pids: set[int], seconds: float = 10) -> dict[int, str]:
    """The processes of ``pids`` still running after up to ``seconds``, with their command lines."""
    deadline = time.time() + seconds
    while alive(pids) and time.time() < deadline:
        time.sleep(0.2)
    return {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in alive(pids)}


def start_prepare(out: Path) -> subprocess.Popen:
    """A prepare with two workers, its stderr in a file beside ``out`` (a pipe would be held open by orphans)."""
    log = out.with_name("stderr.log").open("w")
    return subprocess.Popen([*GALZOO, "prepare", "synthetic", "--n", "320", "--shard-size", "20", "--seed", "4",
                             "--workers", "2", "--out", str(out)], stdout=subprocess.DEVNULL, stderr=log)


def stderr_of(out: Path) -> str:
    return out.with_name("stderr.log").read_text()


def finished_shards(out: Path) -> int:
    try:
        return len(json.loads((out / ".prepare-state.json").read_text())["shards"])
    except (OSError, ValueError):
        return 0


def wait_for_workers(run: subprocess.Popen, out: Path) -> set[int]:
    """The run's worker processes, once they have delivered a new shard's images."""
    before, deadline = finished_shards(out), time.time() + 120
    while time.time() < deadline and finished_shards(out) <= before:
        time.sleep(0.1)
    workers = children_of(run.pid)
    assert len(workers) >= 2, f"no worker processes seen: {workers}"
    return workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc (Linux)")
def test_sigterm_and_sigkill_leave_no_worker_and_the_rerun_gives_identical_records(tmp_path):
    out = tmp_path / "records"
    run = start_prepare(out)
    workers = wait_for_workers(run, out)
    second = subprocess.run([*GALZOO, "prepare", "synthetic", "--n", "320", "--shard-size", "20", "--seed", "4",
                             "--out", str(out), "--overwrite"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 2 and "is being written by another galzoo run" in second.stderr
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=120)
    assert run.returncode == 143 and "SIGTERM" in stderr_of(out) and "Traceback" not in stderr_of(out)
    assert not survivors(workers)
    assert not (tmp_path / ".records.lock").exists()

    run = start_prepare(out)  # resumes, then is killed outright
    workers = wait_for_workers(run, out)
    run.kill()
    run.wait(timeout=60)
    assert not survivors(workers), "workers outlived a SIGKILLed parent"
    assert (tmp_path / ".records.lock").exists()  # left by the killed run: stale, taken over next

    finished = subprocess.run([*GALZOO, "prepare", "synthetic", "--n", "320", "--shard-size", "20", "--seed", "4",
                               "--workers", "0", "--out", str(tmp_path / "reference")], capture_output=True,
                              text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    resumed = start_prepare(out)
    resumed.wait(timeout=600)
    assert resumed.returncode == 0, stderr_of(out)
    shards = sorted(p.name for p in out.glob("*.tfrecord"))
    assert shards == sorted(p.name for p in (tmp_path / "reference").glob("*.tfrecord"))
    assert all((out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes() for name in shards)
    assert not [p.name for p in tmp_path.rglob("*") if any(mark in p.name for mark in LEFTOVERS)]
    assert stderr_of(out).count("error") == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc (Linux)")
def test_a_worker_killed_by_the_system_ends_the_run_in_one_line_and_the_rest_with_it(tmp_path):
    out = tmp_path / "records"
    run = start_prepare(out)
    workers = wait_for_workers(run, out)
    pool = {pid for pid in workers if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}
    os.kill(min(pool), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    run.wait(timeout=120)
    assert run.returncode == 2 and "a worker process died" in stderr_of(out), stderr_of(out)
    assert "Traceback" not in stderr_of(out) and not survivors(workers)
    assert not (tmp_path / ".records.lock").exists()


def test_a_dropout_rate_of_zero_is_a_rate_not_unset(tiny_bar):
    from galzoo_tf.tasks.registry import load_model

    model = load_model(tiny_bar[1], "votes")
    assert model.sampling_rate(0.0) == 0.0 and model.sampler(1, False, 0, 0.0).rate == 0.0
    assert model.sampling_rate() == model.model.get_layer("mc_dropout").rate == 0.5
