"""The command line teaches: every command and option has help; version and schema print."""

from __future__ import annotations

import pytest
import typer
import typer.rich_utils
from typer.testing import CliRunner

from galzoo_cli.console import report
from galzoo_cli.main import app
from galzoo_tf import __version__

runner = CliRunner()


def commands(group, prefix: tuple[str, ...] = ()):
    """(path, command) of every sub-command, depth first (typer vendors click, so duck-type groups)."""
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))


def is_option(param) -> bool:
    return param.param_type_name == "option"


ALL = list(commands(typer.main.get_command(app)))


def test_prepare_has_gz2_and_folder():
    names = {" ".join(path) for path, _ in ALL}
    assert {"prepare", "prepare gz2", "prepare folder", "schema"} <= names


@pytest.mark.parametrize("path, command", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_command_and_option_is_explained(path, command, monkeypatch):
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 200)  # no option name cut short in the help panel
    assert (command.help or "").strip(), f"{' '.join(path)} has no help"
    for param in command.params:
        if is_option(param):
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts[0]} has no help"
        else:
            assert getattr(param, "help", None), f"{' '.join(path)} argument {param.name} has no help"
    result = runner.invoke(app, [*path, "--help"], terminal_width=120)
    assert result.exit_code == 0
    for param in command.params:
        if is_option(param):
            assert param.opts[-1] in result.output


def test_version_and_top_level_help():
    assert runner.invoke(app, ["--version"]).output.strip() == f"galzoo {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "prepare" in result.output


def test_schema_command_prints_the_tree(monkeypatch):
    monkeypatch.setattr(report, "_width", 200)  # wide enough that no column folds
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert "t08_odd_feature_a38_dust_lane_count" in result.output and "37 answers" in result.output


def test_unknown_min_votes_question_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["prepare", "gz2", "--catalogue", str(tmp_path / "c.csv"), "--images",
                                 str(tmp_path), "--min-votes", "barred=3"])
    assert result.exit_code == 2 and "no question 'barred'" in result.output


def test_workers_option_reaches_the_writer(tmp_path, monkeypatch):
    import galzoo_tf.data.prepare

    from conftest import make_gz2

    fixture = make_gz2(tmp_path / "gz2", n=4)

    def no_pool(*args, **kwargs):
        raise AssertionError("--workers 0 must not start worker processes")

    monkeypatch.setattr(galzoo_tf.data.prepare, "ProcessPoolExecutor", no_pool)
    args = ["prepare", "gz2", "--catalogue", str(fixture.catalogue), "--images", str(fixture.images),
            "--mapping", str(fixture.mapping), "--test-size", "1", "--min-votes", "smooth=0"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--workers", "2"])
    assert result.exit_code == 1 and "--workers 0 must not start worker processes" in result.output
