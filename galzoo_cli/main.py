"""The ``galzoo`` command: one sub-command per pipeline stage, each reading what the last one wrote."""

from __future__ import annotations

from typing import Annotated

import typer

from galzoo_cli import acquire, prepare
from galzoo_cli.calibrate import calibrate
from galzoo_cli.console import friendly_errors, quiet_start, report, table
from galzoo_cli.fraction import fraction
from galzoo_cli.predict import predict
from galzoo_cli.representation import anomalies, embed, similar
from galzoo_cli.train import train

app = typer.Typer(
    name="galzoo",
    help="Calibrated probabilistic galaxy morphology, and which galaxies volunteers should label next.\n\n"
         "Stages: [bold]prepare[/] (sources -> TFRecords), [bold]train[/] (records -> Bayesian vote CNN), "
         "[bold]calibrate[/] (coverage error, figures, recalibration), [bold]predict[/] (posterior catalogue), "
         "[bold]acquire[/] (what volunteers should label next; `acquire simulate`: campaigns), "
         "[bold]fraction[/] (a population fraction with its uncertainty), "
         "[bold]embed[/] / [bold]similar[/] / [bold]anomalies[/] (the representation, look-alikes, outliers). "
         "Start with `galzoo prepare --help`; `galzoo schema` shows the decision tree.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_show_locals=False)
app.add_typer(prepare.app, name="prepare")
app.command("train")(train)
app.command("calibrate")(calibrate)
app.command("predict")(predict)
app.add_typer(acquire.app, name="acquire")
app.command("fraction")(fraction)
app.command("embed")(embed)
app.command("similar")(similar)
app.command("anomalies")(anomalies)


def _version(value: bool) -> None:
    if value:
        from galzoo_tf import __version__

        report.print(f"galzoo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the galzoo version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show TensorFlow's start-up and library "
                                                                  "warnings, and the traceback of an "
                                                                  "unexpected error.")] = False,
) -> None:
    """galzoo command line."""
    quiet_start(verbose)


@app.command("schema")
@friendly_errors
def schema(name: Annotated[str, typer.Argument(help="A shipped tree (gz2, decals, euclid) or a tree .json file.")]
           = "gz2") -> None:
    """Show a decision tree: questions, answers, catalogue columns, where each answer leads, and its sources."""
    from galzoo_tf.schema import load_schema

    tree = load_schema(name)
    optional = {"fraction column": tree.fraction_pattern is not None,
                "kaggle": any(a.kaggle for a in tree.answers)}
    columns = ["question", "N column", "answer", "count column", *[c for c, shown in optional.items() if shown],
               "leads to"]
    rows = []
    for question in tree.questions:
        for index, answer in enumerate(question.answers):
            extra = {"fraction column": tree.fraction_column(answer), "kaggle": answer.kaggle or ""}
            rows.append([question.name if index == 0 else "", (question.total_column or "") if index == 0 else "",
                         answer.name, tree.count_column(answer), *[extra[c] for c, shown in optional.items() if shown],
                         answer.leads_to or "end"])
    report.print(table(f"{tree.title}: {len(tree.questions)} questions, {len(tree.answers)} answers", columns, rows))
    if tree.note:
        report.print(f"[dim]{tree.note}[/]")


def run() -> None:
    """Console-script entry point."""
    app()
