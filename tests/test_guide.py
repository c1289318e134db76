"""The user guide cannot rot: every ```bash block of docs/guide.md runs, in order, and every catalogue column
the guide's commands write is described in its column reference."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
from astropy.table import Table

GUIDE = Path(__file__).parents[1] / "docs" / "guide.md"


def bash_blocks(text: str, kind: str = "bash") -> list[str]:
    """The ```bash blocks of a Markdown text, in order (``console`` blocks are shown, not run)."""
    return re.findall(rf"^```{kind}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_guides_download_command_runs_against_a_local_mirror(tmp_path):
    """The one console command that can run here: GZ2 --download, served by 127.0.0.1 in the public layout."""
    from test_download import FixtureServer, publish_gz2

    from conftest import make_gz2

    commands = [line for block in bash_blocks(GUIDE.read_text(), "console") for line in block.splitlines()
                if line.startswith("galzoo prepare gz2 --download")]
    assert len(commands) == 1
    with FixtureServer() as server:
        publish_gz2(server, make_gz2(tmp_path / "public", n=12))
        # the stand-in has 12 galaxies: a 20 % test split instead of the release's 2500
        command = f"{commands[0].split('#')[0]} --mirror {server.url} --test-size 0.2"
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                         f"{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "data" / "gz2" / "records" / "manifest.json").is_file()


def make_inputs(workdir: Path) -> None:
    """What the guide assumes a user has: GZ2 files in the real layout, and a folder of cutouts with votes."""
    from galzoo_tf.sim.gz2_layout import write_gz2_project

    write_gz2_project(workdir / "gz2", n=80, seed=0)
    project = write_gz2_project(workdir / "own", n=60, seed=1)
    (workdir / "own" / "images").rename(workdir / "cutouts")
    votes = project.frame.rename(columns={"dr7objid": "id"})
    votes["file"] = [f"{asset}.jpg" for asset in pd.read_csv(project.mapping)["asset_id"]]
    votes.to_csv(workdir / "votes.csv", index=False)


def generic(column: str, questions: dict[str, list[str]]) -> str:
    """A catalogue column written with the guide's placeholders: bar_bar_rho_mean -> Q_A_rho_mean."""
    if column.startswith("expert_") and column.endswith("_probability"):
        return "expert_COL_probability"
    for question, answers in questions.items():
        for answer in answers:
            if column.startswith(f"{question}_{answer}_"):
                return "Q_A_" + column[len(question) + len(answer) + 2:]
        if column == f"{question}_votes":
            return "Q_votes"
    return column


def commands(block: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, a here-document kept with its command."""
    found: list[str] = []
    lines = iter(block.splitlines())
    for line in lines:
        command = line
        while command.endswith("\\"):
            command = command[:-1] + next(lines).strip()
        if "<<'EOF'" in command:
            command += "\n" + "\n".join(iter(lambda: next(lines), "EOF")) + "\nEOF"
        if command.strip():
            found.append(command)
    return found


def run_command(command: str, workdir: Path) -> str | None:
    """Run one guide command; galzoo ones in this process (one TensorFlow start-up for the whole guide)."""
    if command.startswith("galzoo "):
        from typer.testing import CliRunner

        from galzoo_cli.main import app

        done = CliRunner().invoke(app, shlex.split(command)[1:], catch_exceptions=False)
        return None if done.exit_code == 0 else done.output[-3000:]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", f"set -euo pipefail\n{command}"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)
    return None if done.returncode == 0 else done.stderr[-3000:]


def test_every_command_of_the_guide_runs_and_every_column_is_described(tmp_path, monkeypatch):
    text = GUIDE.read_text()
    blocks = bash_blocks(text)
    assert len(blocks) >= 8
    make_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    for command in (c for block in blocks for c in commands(block)):
        failure = run_command(command, tmp_path)
        assert failure is None, f"guide command failed: {command}\n{failure}"
    questions = {"bar": ["bar", "no_bar"]}
    written = [*Table.read(tmp_path / "catalogues" / "bar-expert.fits").colnames,
               *pd.read_csv(tmp_path / "catalogues" / "mine.csv").columns,
               *pd.read_csv(tmp_path / "next.csv").columns,
               *pd.read_parquet(tmp_path / "catalogues" / "pool.parquet").columns]
    reference = text[text.index("## 8. Output columns"):]
    missing = sorted({generic(c, questions) for c in written} - set(re.findall(r"`([A-Za-z0-9_]+)`", reference)))
    assert not missing, f"columns the guide does not describe: {missing}"
    assert (tmp_path / "reports" / "bar-science" / "bias.png").is_file()
    assert (tmp_path / "next-montage.png").is_file()
