"""`galzoo calibrate`: coverage error of the vote posteriors, the paper's figures, and recalibration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli.console import counting, friendly_errors, report, table
from galzoo_cli.predict import BatchSize, Seed, TaskPasses, Tta
from galzoo_tf.errors import BadInputError


def parse_rates(text: str | None) -> tuple[float, ...]:
    """'0.05,0.1,0.2' -> (0.05, 0.1, 0.2); a clear error for anything else."""
    if not text:
        return ()
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise BadInputError("bad option", f"--tune-dropout takes comma-separated rates like 0.1,0.3,0.5, "
                                          f"not {text!r}") from None


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}%"


def paper_questions(question: str) -> list[str]:
    """The paper's table for the model's question, or both (smooth and bar) for any other question."""
    from galzoo_tf.calibrate import PAPER_TABLES

    return [question] if question in PAPER_TABLES else list(PAPER_TABLES)


def coverage_rows(result: dict, question: str) -> list[list[str]]:
    """One row per maximum error: ours (single, MC, recalibrated, ensemble) beside the paper's Tables 1-2."""
    from galzoo_tf.calibrate import PAPER_TABLES
    from galzoo_tf.calibration import PAPER_MAX_ERRORS

    rows = []
    for index, max_error in enumerate(PAPER_MAX_ERRORS):
        key = f"{max_error:.2f}"
        ours = [_percent(result["coverage_error"][kind][key]) for kind in ("single", "mc")]
        extra = [_percent(result[name]["coverage_error"]["mc"][key]) for name in ("recalibrated", "ensemble")
                 if name in result]
        paper = [_percent(PAPER_TABLES[q][kind][index]) for q in paper_questions(question)
                 for kind in ("single", "mc")]
        rows.append([key, *ours, *extra, *paper])
    return rows


def _columns(result: dict, question: str) -> list[str]:
    extra = [f"tuned MC (rate {result['recalibrated']['dropout_rate']:g})"] if "recalibrated" in result else []
    extra += ["ensemble MC"] if "ensemble" in result else []
    paper = [f"paper {q} {kind}" for q in paper_questions(question) for kind in ("single", "MC")]
    return ["max error", "ours single", "ours MC", *extra, *paper]


def _rmse_rows(result: dict) -> list[list[str]]:
    rmse = result["rmse"]
    rows = [["RMSE of most likely k/N vs observed k/N", f"{rmse['fraction_vs_observed']:.4f}"],
            [f"binomial noise floor (from {rmse['noise_floor_from']})", f"{rmse['noise_floor']:.4f}"]]
    if "fraction_vs_truth" in rmse:
        rows += [["RMSE of most likely k/N vs true rho", f"{rmse['fraction_vs_truth']:.4f}"],
                 ["RMSE of mean rho vs true rho", f"{rmse['rho_mean_vs_truth']:.4f}"]]
    return rows


@friendly_errors
def calibrate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory from `galzoo train`.")],
    data: Annotated[Path, typer.Option(help="Record folder with votes, or with truth parameters for a parameter "
                                           "model (from `galzoo prepare`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder: calibration.json and PNG figures.")],
    split: Annotated[str, typer.Option(help="Split to measure calibration on.")] = "test",
    passes: TaskPasses = None,
    tta: Tta = True,
    batch_size: BatchSize = 32,
    seed: Seed = 0,
    tune_dropout: Annotated[str | None, typer.Option(help="Comma-separated test-time dropout rates to try on "
                                                          "the validation split, e.g. 0.5,0.7,0.9; the best "
                                                          "calibrated is saved in the model's galzoo.json and "
                                                          "used by `galzoo predict`.")] = None,
    tune_split: Annotated[str, typer.Option(help="Split the dropout rate is tuned on.")] = "val",
    ensemble: Annotated[list[Path] | None, typer.Option(help="Another model directory of the same question to "
                                                             "pool samples with (repeat for more).")] = None,
    bias: Annotated[bool, typer.Option("--bias", help="Bias report: which galaxy properties (size, brightness, "
                                                      "axis ratio, S/N, morphology) make the model surprised by "
                                                      "the votes; an additive model, importance and shapes in "
                                                      "bias.png.")] = False,
    expert_labels: Annotated[Path | None, typer.Option(help="CSV of an expert's binary labels ('id' column and "
                                                            "--expert-column) for galaxies of --split: fit vote "
                                                            "fraction -> expert probability, stored with the "
                                                            "model; predict then adds its column.")] = None,
    expert_column: Annotated[str | None, typer.Option(help="The expert's label column in --expert-labels.")]
    = None,
    expert_answer: Annotated[str | None, typer.Option(help="QUESTION/ANSWER whose predicted vote fraction the "
                                                           "expert label is fitted on (default: the model's "
                                                           "first answer, e.g. bar/bar).")] = None,
) -> None:
    """Measure how well the posteriors are calibrated (coverage error, Walmsley et al. 2019 eq. 11-13), draw the paper's figures, and recalibrate.

    Parameter models (GaMPEN): coverage of the 68.27/95.45/99.73 % highest-density intervals per parameter, typical errors, flag accuracy, residual figures; --tune-dropout picks the rate whose coverage is closest to the levels. Vote models: coverage error = (expected - actual) / actual galaxies whose vote fraction lies within a maximum error of the prediction: positive means overconfident. The paper's models are overconfident; --tune-dropout widens the MC dropout posterior, --ensemble pools several models.
    """  # noqa: E501
    from galzoo_tf.model_dir import ParameterModel, load_model

    rates = parse_rates(tune_dropout)
    if tune_split == split and rates:
        raise BadInputError("bad option", f"tune on another split than the one reported (--split {split})")
    loaded = load_model(model)
    if isinstance(loaded, ParameterModel):
        _calibrate_parameters(loaded, data, out, split, passes or 100, seed, batch_size, rates, tune_split)
        return
    from galzoo_tf.calibrate import CalibrateOptions
    from galzoo_tf.calibrate import calibrate as run
    from galzoo_tf.model_dir import load_vote_model

    passes = passes or 30
    if (expert_labels is None) != (expert_column is None):
        raise BadInputError("bad option", "--expert-labels CSV and --expert-column COL go together")
    options = CalibrateOptions(split=split, passes=passes, tta=tta, seed=seed, batch_size=batch_size,
                               tune_dropout=rates, tune_split=tune_split, bias=bias, expert_labels=expert_labels,
                               expert_column=expert_column, expert_answer=expert_answer)
    with counting("sampling posteriors") as progress:
        result = run(loaded, data, out, options, [load_vote_model(p) for p in ensemble or []], progress)
    question = loaded.sidecar["question"]
    report.print(table(f"coverage error on the {split} split ({result['galaxies']:,} galaxies, T = {passes}): "
                       "+ overconfident, - underconfident", _columns(result, question),
                       coverage_rows(result, question)))
    final = result.get("recalibrated", result)
    report.print(table("point metrics" + (" (recalibrated)" if "recalibrated" in result else ""), ["", ""],
                       _rmse_rows(final)))
    if "bias" in result:
        _print_bias(result["bias"])
    if "expert" in result:
        _print_expert(result["expert"])
    report.print(f"report: {out / 'calibration.json'}; figures: {', '.join(result['figures'][:3])}, ... in {out}")


def _print_bias(bias: dict) -> None:
    rows = [[name, f"{bias['importance'][name]['mean']:+.3f} +- {bias['importance'][name]['std']:.3f}"]
            for name in bias["ranking"]]
    report.print(table(f"bias report: what raises the surprise -ln p(k|N) (held-out R^2 {bias['r2_held_out']:.2f}, "
                       f"{bias['galaxies']:,} galaxies; shapes in {bias['figure']})",
                       ["property", "permutation importance"], rows))


def _print_expert(expert: dict) -> None:
    rows = [[name.replace("_", " "), f"{v['expected']:.1f}", f"{v['actual']} +- {v['poisson_error']:.1f}",
             "yes" if v["within_poisson_error"] else "no"] for name, v in expert["positives"].items()]
    report.print(table(f"expert label {expert['column']!r} on {expert['held_out']} held-out galaxies (fitted on "
                       f"{expert['train']}; ROC AUC {expert['roc_auc']:.3f}; {expert['figure']})",
                       ["probabilities", "expected positives", "actual", "within Poisson error"], rows))


def _calibrate_parameters(model, data: Path, out: Path, split: str, passes: int, seed: int, batch_size: int,
                          rates: tuple[float, ...], tune_split: str) -> None:
    """HDI coverage, typical errors and flags of a parameter model, beside GaMPEN's Table 2."""
    from galzoo_tf.parameter_calibration import ParameterCalibrateOptions, calibrate_parameters, level_table
    from galzoo_tf.parameter_posterior import LEVELS

    options = ParameterCalibrateOptions(split=split, passes=passes, seed=seed, batch_size=batch_size,
                                        tune_dropout=rates, tune_split=tune_split)
    with counting("sampling parameter posteriors") as progress:
        result = calibrate_parameters(model, data, out, options, progress)
    levels = [f"{100 * level:.2f}%" for level in LEVELS]
    report.print(table(f"HDI coverage on the {split} split ({result['galaxies']:,} galaxies, T = {passes}, "
                       f"dropout {result['dropout_rate']:g})", ["parameter", *[f"ours {v}" for v in levels],
                                                               *[f"paper {v}" for v in levels]],
                       level_table(result)))
    errors = result["typical_error"]
    rows = [["L_B/L_T: 68th percentile |error|", f"{errors['bulge_to_total']:.3f}"],
            ["R_e: 68th percentile |fractional error|", f"{100 * errors['r_e_arcsec']:.1f}%"],
            ["flux: 68th percentile |fractional error|", f"{100 * errors['flux']:.1f}%"]]
    rows += [[f"flag {name}: accuracy", f"{100 * value['accuracy']:.1f}%"] for name, value in result["flags"].items()]
    report.print(table("errors of the most probable value and flag accuracy", ["", ""], rows))
    report.print(f"report: {out / 'calibration.json'}; figures: {', '.join(result['figures'])} in {out}")
